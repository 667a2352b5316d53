import { describe, expect, it } from 'vitest';
import { Gate, formatRefusal, type GateEvent, type PermitRequest } from '../../src/engine/index.ts';
import { ctx, T0 } from './helpers.ts';

const OPEN = { policies: [{ name: 'all', effect: 'permit', conditions: [] }] };

describe('what the gate hands the signer', () => {
  it('binds principal, kind, action, args, session, audience and a window of permitTtlMs', async () => {
    const requests: PermitRequest[] = [];
    const gate = Gate.fromDict(OPEN, {
      drift: false,
      clock: () => T0,
      permitTtlMs: 5_000,
      signer: {
        issue: async (r) => {
          requests.push(r);
          return { token: 'tok', id: 'jti-1' };
        },
      },
    });
    const v = await gate.evaluate(ctx({ sessionId: 's1', audience: 'payments', params: { amount: 5, to: { id: 'c-1' } } }));
    expect(v).toMatchObject({ kind: 'permit', permit: 'tok', permitId: 'jti-1', policy: 'all' });
    expect(requests[0]).toMatchObject({
      principalId: 'agent-1',
      principalKind: 'agent',
      action: 'tool.run',
      args: { amount: 5, to: { id: 'c-1' } },
      sessionId: 's1',
      audience: 'payments',
      issuedAt: T0,
      expiresAt: T0 + 5_000,
      evaluationId: v.evaluationId,
    });
  });

  it('defaults permits to 30 s and refuses a nonsensical permitTtlMs', async () => {
    let request: PermitRequest | undefined;
    const gate = Gate.fromDict(OPEN, {
      drift: false,
      clock: () => T0,
      signer: {
        issue: async (r) => {
          request = r;
          return { token: 't', id: 'i' };
        },
      },
    });
    await gate.evaluate(ctx());
    expect(request?.expiresAt).toBe(T0 + 30_000);
    for (const permitTtlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => Gate.fromDict(OPEN, { permitTtlMs })).toThrow();
  });

  it('signs nothing for refusals', async () => {
    let calls = 0;
    const gate = Gate.fromDict(
      { policies: [] },
      {
        drift: false,
        signer: {
          issue: async () => {
            calls++;
            return { token: 't', id: 'i' };
          },
        },
      },
    );
    expect((await gate.evaluate(ctx())).kind).toBe('refuse');
    expect(calls).toBe(0);
  });

  it('gives every evaluation its own id', async () => {
    const gate = Gate.fromDict(OPEN, { drift: false });
    const ids = new Set(await Promise.all(Array.from({ length: 50 }, async () => (await gate.evaluate(ctx())).evaluationId)));
    expect(ids.size).toBe(50);
  });
});

describe('what the gate records', () => {
  it('one verdict event per evaluation, with args for valid calls and the refusal details', async () => {
    const events: GateEvent[] = [];
    const gate = Gate.fromDict(
      {
        policies: [
          { name: 'small', effect: 'permit', conditions: [{ param_max: { field: 'amount', max: 10 } }] },
          { name: 'no_shell', effect: 'refuse', conditions: [{ action: 'shell.*' }] },
        ],
      },
      { drift: false, clock: () => T0, audit: { append: async (e) => void events.push(e) } },
    );
    await gate.evaluate(ctx({ params: { amount: 5 }, callId: 'c1', resource: 'orders/1', sessionId: 's1' }));
    await gate.evaluate(ctx({ actionName: 'shell.exec', params: { cmd: 'ls' } }));
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      type: 'verdict',
      time: T0,
      principal: 'agent-1',
      principalKind: 'agent',
      action: 'tool.run',
      verdict: 'permit',
      policy: 'small',
      args: { amount: 5 },
      callId: 'c1',
      resource: 'orders/1',
      session: 's1',
    });
    expect(events[1]).toMatchObject({
      verdict: 'refuse',
      code: 'POLICY_DENIED',
      policy: 'no_shell',
      evaluator: 'policy',
      args: { cmd: 'ls' },
    });
  });

  it('records reloads, good and bad', async () => {
    const events: GateEvent[] = [];
    const gate = Gate.fromDict(OPEN, { audit: { append: async (e) => void events.push(e) } });
    gate.reload('');
    expect(() => gate.reload('{')).toThrow();
    await new Promise((r) => setTimeout(r, 0));
    expect(events.filter((e) => e.type === 'policy_reload')).toMatchObject([
      { ok: true, policies: 0 },
      { ok: false, policies: 0 },
    ]);
  });
});

describe('the refusal text models see', () => {
  it('has the documented shape, with the retry in whole seconds', async () => {
    const gate = Gate.fromDict(
      { policies: [{ name: 'agent_refunds', effect: 'permit', conditions: [{ rate_limit: { max: 5, window: '1h' } }] }] },
      {
        drift: false,
        clock: () => T0,
      },
    );
    for (let i = 0; i < 5; i++) await gate.evaluate(ctx());
    const v = await gate.evaluate(ctx());
    expect(v.kind).toBe('refuse');
    if (v.kind !== 'refuse') return;
    expect(formatRefusal({ ...v, retryAfterMs: 41_200 })).toBe(
      "Refused by policy [RATE_LIMITED] policy: 'agent_refunds' allows 5 calls per 1h; retry after 42s.",
    );
    expect(formatRefusal({ ...v, retryAfterMs: 1 })).toMatch(/retry after 1s\.$/);
  });

  it('names the session invalidation for an invalidate verdict', async () => {
    const gate = Gate.fromDict(OPEN);
    await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.5' }));
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9' }));
    expect(v.kind).toBe('invalidate');
    if (v.kind === 'invalidate')
      expect(formatRefusal(v)).toMatch(/^Refused by policy \[SESSION_INVALID\] drift: ip drift: .*must be restarted\.$/);
  });

  it('explains a default deny by naming the nearest permit and what it needs', async () => {
    const gate = Gate.fromDict(
      { policies: [{ name: 'small', effect: 'permit', conditions: [{ action: 'pay' }, { param_max: { field: 'amount', max: 10 } }] }] },
      { drift: false },
    );
    const v = await gate.evaluate(ctx({ actionName: 'pay', params: { amount: 50 } }));
    expect(v).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH', policy: 'small' });
    expect(v.kind === 'refuse' && v.reason).toMatch(/requires amount <= 10 \(amount does not\)$/);
  });

  it('names a permit for a role the caller lacks, never one for another principal kind or id', async () => {
    const gate = Gate.fromDict(
      {
        policies: [
          { name: 'users-only', effect: 'permit', conditions: [{ identity_kind: 'user' }] },
          { name: 'bob-only', effect: 'permit', conditions: [{ identity_id: 'bob' }] },
          { name: 'ops-only', effect: 'permit', conditions: [{ identity_role: 'ops' }, { param_max: { field: 'amount', max: 10 } }] },
        ],
      },
      { drift: false },
    );
    const v = await gate.evaluate(ctx({ roles: [], params: { amount: 1 } }));
    expect(v).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH', policy: 'ops-only' });
    expect(v.kind === 'refuse' && v.reason).toMatch(/requires principal has role "ops"/);
  });

  it('never quotes an argument, however long', async () => {
    const gate = Gate.fromDict(
      { policies: [{ name: 'p', effect: 'permit', conditions: [{ param_in: { field: 'x', values: ['a'] } }] }] },
      { drift: false },
    );
    const v = await gate.evaluate(ctx({ params: { x: 'y'.repeat(100_000) } }));
    expect(v.kind === 'refuse' && v.reason).toMatch(/requires x is one of "a" \(x does not\)$/);
  });
});
