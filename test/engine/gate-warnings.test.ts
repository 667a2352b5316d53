import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuditSink, RateStore } from '../../src/engine/index.ts';
import { ctx, gateOf, permitWith } from './helpers.ts';

describe('GateOptions.onWarning', () => {
  afterEach(() => vi.restoreAllMocks());

  it('receives what the gate cannot act on, and nothing reaches stderr', async () => {
    const stderr = vi.spyOn(process.stderr, 'write');
    const warnings: string[] = [];
    const audit: AuditSink = { append: async () => Promise.reject(new Error('disk full')) };
    const rate: RateStore = {
      checkAndCharge: () => ({ admitted: true }),
      refund: () => {
        throw new Error('redis gone');
      },
    };
    const gate = gateOf(permitWith([{ rate_limit: { max: 5, window: '1m' } }]), {
      audit,
      stores: { rate },
      onWarning: (m) => warnings.push(m),
    });
    const verdict = await gate.evaluate(ctx());
    expect(verdict).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE', evaluator: 'audit' });
    expect(warnings).toEqual(['audit append failed: Error: disk full', 'refund failed (limit stays charged): Error: redis gone']);
    expect(stderr).not.toHaveBeenCalled();
  });

  it('defaults to one kavach: line on stderr', async () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    const gate = gateOf(permitWith([]), { audit: { append: async () => Promise.reject(new Error('disk full')) } });
    await gate.evaluate(ctx());
    expect(lines).toEqual(['kavach: audit append failed: Error: disk full\n']);
  });
});
