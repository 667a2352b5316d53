import { describe, expect, it, vi } from 'vitest';
import { decideToolCall, toParams, type GateDecision } from '../../src/adapters/shared.ts';
import { Gate } from '../../src/engine/gate.ts';
import { formatRefusal } from '../../src/engine/refusal.ts';
import { agent, refundGate, throwingGate } from './fixtures.ts';

const attempt = (args: unknown, callId?: string) => ({ toolName: 'refund', args, callId, run: {} });

describe('decideToolCall (shared by every adapter)', () => {
  it('permits, and refuses with the one refusal text', async () => {
    const gate = refundGate();
    const ok = await decideToolCall(gate, { principal: agent }, attempt({ amount: 10 }));
    expect(ok).toMatchObject({ allowed: true, verdict: { kind: 'permit' }, params: { amount: 10 } });
    const no = await decideToolCall(gate, { principal: agent }, attempt({ amount: 1000 }));
    expect(no.allowed).toBe(false);
    expect(no.refusal).toBe(formatRefusal(no.verdict as Exclude<GateDecision['verdict'], { kind: 'permit' }>));
  });

  it('fails closed: no principal, a principal resolver that throws, non-JSON arguments, a gate that throws', async () => {
    const gate = refundGate();
    const cases = await Promise.all([
      decideToolCall(gate, { principal: () => undefined }, attempt({ amount: 1 })),
      decideToolCall(
        gate,
        {
          principal: () => {
            throw new Error('auth down');
          },
        },
        attempt({ amount: 1 }),
      ),
      decideToolCall(gate, { principal: agent }, attempt({ amount: 1n })),
      decideToolCall(throwingGate, { principal: agent }, attempt({ amount: 1 })),
    ]);
    for (const d of cases) expect(d).toMatchObject({ allowed: false, verdict: { kind: 'refuse', code: 'INVALID_CONTEXT' } });
    expect(cases.map((d) => d.verdict.kind === 'refuse' && d.verdict.reason)).toEqual([
      'no principal for this call',
      'the principal could not be resolved',
      'the tool arguments are not JSON',
      'the call could not be evaluated',
    ]);
  });

  it('observe mode lets a policy refusal through but still refuses when the adapter cannot evaluate', async () => {
    const observed = await decideToolCall(refundGate(), { principal: agent, mode: 'observe' }, attempt({ amount: 1000 }));
    expect(observed).toMatchObject({
      allowed: true,
      mode: 'observe',
      verdict: { kind: 'refuse' },
      refusal: expect.stringMatching(/^Refused by policy/),
    });
    const broken = await decideToolCall(throwingGate, { principal: agent, mode: 'observe' }, attempt({ amount: 1 }));
    expect(broken.allowed).toBe(false);
  });

  it('observe mode in front of an enforcing gate invalidates nothing: the session lives on for enforced calls', async () => {
    const gate = Gate.fromDict({ policies: [{ name: 'any', effect: 'permit', conditions: [] }] }, { drift: { ipGeo: 'strict' } });
    const run = (ip: string, mode: 'enforce' | 'observe') =>
      decideToolCall(gate, { principal: agent, sessionId: 'sess-obs', environment: { ip }, mode }, attempt({ amount: 1 }));
    expect((await run('203.0.113.7', 'enforce')).allowed).toBe(true);
    const drifted = await run('198.51.100.9', 'observe');
    expect(drifted).toMatchObject({ allowed: true, verdict: { kind: 'invalidate' } });
    expect(await run('203.0.113.7', 'enforce')).toMatchObject({ allowed: true, verdict: { kind: 'permit' } });
  });

  it('maps the tool name to an action name and passes session, call id and environment to the gate', async () => {
    const inner = Gate.fromDict(
      { policy: [{ name: 'p', effect: 'permit', conditions: [{ action: 'billing.refund' }, { ip_in: { cidrs: ['10.0.0.0/8'] } }] }] },
      { drift: false },
    );
    const seen: unknown[] = [];
    const spy = { evaluate: (ctx: Parameters<Gate['evaluate']>[0]) => (seen.push(ctx), inner.evaluate(ctx)) };
    const d = await decideToolCall(
      spy,
      {
        principal: agent,
        sessionId: (run: { s: string }) => run.s,
        actionName: (n) => `billing.${n}`,
        environment: { ip: '10.1.2.3' },
      },
      { toolName: 'refund', args: 'plain text', callId: 'c9', run: { s: 'sess-1' } },
    );
    expect(d).toMatchObject({ allowed: true, actionName: 'billing.refund' });
    expect(seen[0]).toMatchObject({
      actionName: 'billing.refund',
      sessionId: 'sess-1',
      callId: 'c9',
      ip: '10.1.2.3',
      params: { input: 'plain text' },
      principalId: 'support-bot',
      roles: ['support'],
    });
  });

  it('reports every decision to onDecision, and a failing callback does not change the outcome', async () => {
    const decisions: GateDecision[] = [];
    await decideToolCall(refundGate(), { principal: agent, onDecision: (d) => void decisions.push(d) }, attempt({ amount: 5 }, 'a'));
    expect(decisions).toHaveLength(1);
    const d = await decideToolCall(
      refundGate(),
      {
        principal: agent,
        onDecision: () => {
          throw new Error('observer broke');
        },
      },
      attempt({ amount: 5 }),
    );
    expect(d.allowed).toBe(true);
  });

  it('tells onWarning why a call could not be evaluated and that onDecision threw; a throwing onWarning changes nothing', async () => {
    const warnings: string[] = [];
    const onWarning = (message: string) => void warnings.push(message);
    const broken = await decideToolCall(throwingGate, { principal: agent, onWarning }, attempt({ amount: 1 }));
    expect(broken.allowed).toBe(false);
    const observed = await decideToolCall(
      refundGate(),
      {
        principal: agent,
        onWarning,
        onDecision: () => {
          throw new Error('observer broke');
        },
      },
      attempt({ amount: 5 }),
    );
    expect(observed.allowed).toBe(true);
    expect(warnings).toEqual(["tool call 'refund' could not be evaluated: gate exploded", 'onDecision callback failed: observer broke']);
    const loud = () => {
      throw new Error('logger down');
    };
    await expect(decideToolCall(throwingGate, { principal: agent, onWarning: loud }, attempt({ amount: 1 }))).resolves.toMatchObject({
      allowed: false,
    });
  });

  it('warns on stderr when no onWarning is given', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      await decideToolCall(throwingGate, { principal: agent }, attempt({ amount: 1 }));
    } finally {
      spy.mockRestore();
    }
    expect(written).toEqual(["kavach: tool call 'refund' could not be evaluated: gate exploded\n"]);
  });

  it('reads arguments as the JSON a tool would receive', () => {
    expect(toParams(undefined)).toEqual({});
    expect(toParams({ when: new Date(0), skip: undefined })).toEqual({ when: '1970-01-01T00:00:00.000Z' });
    expect(toParams([1, 2])).toEqual({ input: [1, 2] });
    expect(() => toParams({ n: 1n })).toThrow();
  });
});
