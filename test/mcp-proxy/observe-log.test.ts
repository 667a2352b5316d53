import { describe, expect, it } from 'vitest';
import type { GateEvent, VerdictEvent } from '../../src/engine/ports.ts';
import { observedLine, reportObserved } from '../../src/mcp-proxy/observe-log.ts';

const REFUSED: VerdictEvent = {
  type: 'verdict',
  time: 0,
  evaluationId: 'e1',
  principal: 'alice@laptop',
  principalKind: 'agent',
  action: 'fs.write_file',
  verdict: 'refuse',
  code: 'NO_POLICY_MATCH',
  reason: 'no policy permits fs.write_file',
  args: { path: '/etc/passwd' },
  observed: true,
};

describe('observe mode on stderr', () => {
  it('puts each call enforcement would have refused on one line, with its action, principal, code and reason', () => {
    expect(observedLine(REFUSED)).toBe(
      'observe: would refuse fs.write_file by alice@laptop (NO_POLICY_MATCH: no policy permits fs.write_file); let through because [gate] observe_only = true',
    );
  });

  it('says nothing of permits, of verdicts outside observe mode, or of other events', () => {
    expect(observedLine({ ...REFUSED, verdict: 'permit', code: undefined } as VerdictEvent)).toBeUndefined();
    expect(observedLine({ ...REFUSED, observed: undefined } as VerdictEvent)).toBeUndefined();
    expect(observedLine({ type: 'policy_reload', time: 0, ok: true, policies: 1 })).toBeUndefined();
  });

  it('keeps a hostile reason or tool name to one printable line', () => {
    const line = observedLine({ ...REFUSED, action: 'fs.x\nFAKE LOG LINE', reason: `a\u001b[2Jb\r\n${'z'.repeat(1000)}` }) as string;
    expect(line.split('\n')).toHaveLength(1);
    expect(line).not.toMatch(/[\u0000-\u001f]/);
    expect(line.length).toBeLessThan(700);
  });

  it('logs and still hands every event to the audit sink it wraps', async () => {
    const seen: GateEvent[] = [];
    const lines: string[] = [];
    const sink = reportObserved({ append: async (e) => void seen.push(e) }, (l) => lines.push(l));
    await sink.append(REFUSED);
    await sink.append({ ...REFUSED, verdict: 'permit', observed: undefined } as VerdictEvent);
    expect(seen).toHaveLength(2);
    expect(lines).toHaveLength(1);
    await expect(reportObserved(undefined, (l) => lines.push(l)).append(REFUSED)).resolves.toBeUndefined();
    expect(lines).toHaveLength(2);
  });
});
