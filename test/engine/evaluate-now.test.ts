// gate.evaluateNow: the verdict in the same turn when every step is synchronous (what the proxy's
// hot path uses), a promise otherwise, and the same verdict as evaluate() either way.
import { describe, expect, it } from 'vitest';
import { InMemorySessionStore, type SessionStore, type Verdict } from '../../src/engine/index.ts';
import { code, ctx, gateOf, heldSigner, manualClock, permitWith, untilHeld } from './helpers.ts';

const OPEN = permitWith([{ action: 'tool.*' }]);

function isPromise(v: unknown): v is Promise<Verdict> {
  return typeof (v as { then?: unknown })?.then === 'function';
}

/** A session store that answers like a remote one: a turn later. */
function deferredSessions(): SessionStore {
  const inner = new InMemorySessionStore();
  return {
    observe: (obs) => Promise.resolve().then(() => inner.observe(obs)),
    invalidate: (scope, reason, now) => Promise.resolve().then(() => inner.invalidate(scope, reason, now)),
  } as SessionStore;
}

describe('gate.evaluateNow', () => {
  it('answers in the same turn with in-memory stores, no signer and no audit log: permit and refusal alike', () => {
    const gate = gateOf(OPEN, { clock: manualClock().now });
    const permit = gate.evaluateNow(ctx({ sessionId: 's1' }));
    const refusal = gate.evaluateNow(ctx({ actionName: 'other.run', sessionId: 's1' }));
    expect(isPromise(permit)).toBe(false);
    expect(isPromise(refusal)).toBe(false);
    expect(code(permit as Verdict)).toBe('permit');
    expect(code(refusal as Verdict)).toBe('NO_POLICY_MATCH');
  });

  it('a store that answers later makes it a promise, with the verdict evaluate() gives', async () => {
    const gate = gateOf(OPEN, { stores: { session: deferredSessions() } });
    const pending = gate.evaluateNow(ctx({ sessionId: 's1' }));
    expect(isPromise(pending)).toBe(true);
    expect(code(await pending)).toBe('permit');
    expect(code(await gate.evaluate(ctx({ actionName: 'other.run', sessionId: 's1' })))).toBe('NO_POLICY_MATCH');
  });

  it('a store that throws or rejects is STORE_UNAVAILABLE, never a throw', async () => {
    const throwing = {
      observe: () => {
        throw new Error('down');
      },
    } as unknown as SessionStore;
    const rejecting = { observe: () => Promise.reject(new Error('down')) } as unknown as SessionStore;
    for (const session of [throwing, rejecting]) {
      const gate = gateOf(OPEN, { stores: { session }, onWarning: () => undefined });
      let verdict: Verdict | Promise<Verdict> | undefined;
      expect(() => {
        verdict = gate.evaluateNow(ctx({ sessionId: 's1' }));
      }).not.toThrow();
      expect(code(await (verdict as Verdict | Promise<Verdict>))).toBe('STORE_UNAVAILABLE');
    }
  });

  it('with a signer the permit carries its token, so the answer waits for it', async () => {
    const signer = heldSigner();
    const gate = gateOf(OPEN, { signer });
    const pending = gate.evaluateNow(ctx());
    expect(isPromise(pending)).toBe(true);
    await untilHeld(signer);
    signer.release();
    const verdict = await pending;
    expect(verdict.kind === 'permit' && verdict.permit).toMatch(/^tok-/);
  });

  it('bad input is refused INVALID_CONTEXT', async () => {
    const gate = gateOf(OPEN);
    expect(code(await gate.evaluateNow({ principalId: 'a' } as never))).toBe('INVALID_CONTEXT');
  });

  it('evaluate() turns a throwing clock into a rejection, as it always has', async () => {
    const gate = gateOf(OPEN, {
      clock: () => {
        throw new Error('clock broke');
      },
    });
    let pending: Promise<Verdict> | undefined;
    expect(() => {
      pending = gate.evaluate(ctx());
    }).not.toThrow();
    await expect(pending).rejects.toThrow('clock broke');
  });

  it('a kill switch pressed between two calls answered in the same turn refuses the second', () => {
    const gate = gateOf(OPEN);
    expect(code(gate.evaluateNow(ctx()) as Verdict)).toBe('permit');
    gate.reload('');
    expect(code(gate.evaluateNow(ctx()) as Verdict)).toBe('NO_POLICY_MATCH');
  });
});
