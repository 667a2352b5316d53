import { describe, expect, it } from 'vitest';
import type { ActionContext, GateEvent, PermitIssuer, RateStore, Verdict } from '../../src/engine/index.ts';
import { InMemoryRateStore } from '../../src/engine/index.ts';
import { code, ctx, gateOf, manualClock, outcome, permitWith } from './helpers.ts';

const limited = (max: number, window = '1m', per?: string, extra: unknown[] = []) =>
  permitWith([...extra, { rate_limit: { max, window, ...(per ? { per } : {}) } }]);

const budget = (max: number, per?: string, extra: unknown[] = []) =>
  permitWith([...extra, { budget: { field: 'amount', max, window: '1d', ...(per ? { per } : {}) } }]);

const okSigner: PermitIssuer = { issue: async (r) => ({ token: `tok-${r.evaluationId}`, id: `jti-${r.evaluationId}` }) };

describe('rate_limit', () => {
  it('admits max calls per window, then RATE_LIMITED with retryAfterMs, then admits again once the window slides', async () => {
    const clock = manualClock();
    const gate = gateOf(limited(2, '1m'), { clock: clock.now });
    expect(await outcome(gate, ctx())).toBe('permit');
    clock.advance(10_000);
    expect(await outcome(gate, ctx())).toBe('permit');
    clock.advance(5_000);
    const v = await gate.evaluate(ctx());
    expect(v).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED', policy: 'p', retryAfterMs: 45_000 });
    clock.advance(45_000);
    expect(await outcome(gate, ctx())).toBe('permit');
    expect(await outcome(gate, ctx())).toBe('RATE_LIMITED');
  });

  it('only permitted calls count: calls refused by an invariant or a refuse policy do not use the limit', async () => {
    const gate = gateOf({
      policies: [
        { name: 'p', effect: 'permit', conditions: [{ rate_limit: { max: 2, window: '1h' } }] },
        { name: 'no_drop', effect: 'refuse', conditions: [{ param_in: { field: 'op', values: ['drop'] } }] },
      ],
      invariant: [{ name: 'cap', param_max: { field: 'amount', max: 100 } }],
    });
    for (let i = 0; i < 5; i++) {
      expect(await outcome(gate, ctx({ params: { amount: 1000 } }))).toBe('INVARIANT_VIOLATION');
      expect(await outcome(gate, ctx({ params: { amount: 1, op: 'drop' } }))).toBe('POLICY_DENIED');
    }
    expect(await outcome(gate, ctx({ params: { amount: 1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 1 } }))).toBe('RATE_LIMITED');
  });

  it('RATE_LIMITED only when the limit is the sole failure; otherwise NO_POLICY_MATCH without retryAfterMs', async () => {
    const gate = gateOf(limited(1, '1h', undefined, [{ param_max: { field: 'amount', max: 10 } }]));
    expect(await outcome(gate, ctx({ params: { amount: 5 } }))).toBe('permit');
    const overLimit = await gate.evaluate(ctx({ params: { amount: 5 } }));
    expect(overLimit).toMatchObject({ code: 'RATE_LIMITED' });
    expect(overLimit.kind === 'refuse' && overLimit.retryAfterMs).toBeGreaterThan(0);
    const both = await gate.evaluate(ctx({ params: { amount: 50 } }));
    expect(both).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH' });
    expect(both.kind === 'refuse' && both.retryAfterMs).toBeUndefined();
  });

  it('a limited policy that is full falls through to another permit that has room', async () => {
    const gate = gateOf({
      policies: [
        { name: 'burst', effect: 'permit', conditions: [{ rate_limit: { max: 1, window: '1m' } }] },
        { name: 'steady', effect: 'permit', conditions: [{ rate_limit: { max: 2, window: '1h' } }] },
      ],
    });
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const v = await gate.evaluate(ctx());
      seen.push(v.kind === 'permit' ? v.policy : code(v));
    }
    expect(seen).toEqual(['burst', 'steady', 'steady', 'RATE_LIMITED']);
  });

  it('when every limited policy is full, retryAfterMs is the soonest any of them has room', async () => {
    const clock = manualClock();
    const gate = gateOf(
      {
        policies: [
          { name: 'hourly', effect: 'permit', conditions: [{ rate_limit: { max: 1, window: '1h' } }] },
          { name: 'minutely', effect: 'permit', conditions: [{ rate_limit: { max: 1, window: '1m' } }] },
        ],
      },
      { clock: clock.now },
    );
    expect(await outcome(gate, ctx())).toBe('permit');
    expect(await outcome(gate, ctx())).toBe('permit');
    clock.advance(10_000);
    const v = await gate.evaluate(ctx());
    expect(v).toMatchObject({ code: 'RATE_LIMITED', policy: 'hourly', retryAfterMs: 50_000 });
    clock.advance(50_000);
    expect(await outcome(gate, ctx())).toBe('permit');
  });

  it('an unlimited permit that matches wins over a limited one', async () => {
    const gate = gateOf({
      policies: [
        { name: 'limited', effect: 'permit', conditions: [{ rate_limit: { max: 1, window: '1m' } }] },
        { name: 'admins', effect: 'permit', conditions: [{ identity_role: 'admin' }] },
      ],
    });
    for (let i = 0; i < 5; i++) expect(await outcome(gate, ctx({ roles: ['admin'] }))).toBe('permit');
    expect(await outcome(gate, ctx())).toBe('permit');
    expect(await outcome(gate, ctx())).toBe('RATE_LIMITED');
  });

  it('per principal+action (default) keeps actions and principals apart', async () => {
    const gate = gateOf(limited(1));
    expect(await outcome(gate, ctx({ actionName: 'a' }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'b' }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'a', principalId: 'agent-2' }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'a' }))).toBe('RATE_LIMITED');
  });

  it('per principal shares one counter across actions', async () => {
    const gate = gateOf(limited(2, '1m', 'principal'));
    expect(await outcome(gate, ctx({ actionName: 'a' }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'b' }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'c' }))).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx({ actionName: 'c', principalId: 'agent-2' }))).toBe('permit');
  });

  it('per session counts per session and needs a session', async () => {
    const gate = gateOf(limited(1, '1m', 'session'));
    expect(await outcome(gate, ctx())).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx({ sessionId: 's2' }))).toBe('permit');
  });

  it('global is one counter for everyone', async () => {
    const gate = gateOf(limited(2, '1m', 'global'));
    expect(await outcome(gate, ctx({ principalId: 'a', actionName: 'x' }))).toBe('permit');
    expect(await outcome(gate, ctx({ principalId: 'b', actionName: 'y', principalKind: 'user' }))).toBe('permit');
    expect(await outcome(gate, ctx({ principalId: 'c', actionName: 'z' }))).toBe('RATE_LIMITED');
  });

  it('ids that would collide when joined naively stay apart', async () => {
    const gate = gateOf(limited(1));
    expect(await outcome(gate, ctx({ principalId: 'a', actionName: 'b:c' }))).toBe('permit');
    expect(await outcome(gate, ctx({ principalId: 'a:b', actionName: 'c' }))).toBe('permit');
    expect(await outcome(gate, ctx({ principalId: 'a","b', actionName: 'c' }))).toBe('permit');
    expect(await outcome(gate, ctx({ principalId: 'a', actionName: 'b","c' }))).toBe('permit');
  });

  it('two limits in one policy: both must fit, and a refusal charges neither', async () => {
    const gate = gateOf(permitWith([{ rate_limit: { max: 3, window: '1m' } }, { rate_limit: { max: 1, window: '1m', per: 'global' } }]));
    expect(await outcome(gate, ctx())).toBe('permit');
    expect(await outcome(gate, ctx())).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx())).toBe('RATE_LIMITED');
  });
});

describe('budget', () => {
  it('keeps a running sum per principal+action and refuses what would exceed it', async () => {
    const gate = gateOf(budget(5000));
    expect(await outcome(gate, ctx({ params: { amount: 3000 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 1500 } }))).toBe('permit');
    const over = await gate.evaluate(ctx({ params: { amount: 600 } }));
    expect(over).toMatchObject({ code: 'RATE_LIMITED', policy: 'p' });
    expect(over.kind === 'refuse' && over.retryAfterMs).toBeGreaterThan(0);
    expect(await outcome(gate, ctx({ params: { amount: 500 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 0 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 0.01 } }))).toBe('RATE_LIMITED');
  });

  it('a single amount over the whole budget is refused with no retry (it can never fit)', async () => {
    const v = await gateOf(budget(100)).evaluate(ctx({ params: { amount: 101 } }));
    expect(v).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED' });
    expect(v.kind === 'refuse' && v.retryAfterMs).toBeUndefined();
  });

  it('negative amounts cannot refill the budget', async () => {
    const gate = gateOf(budget(100));
    expect(await outcome(gate, ctx({ params: { amount: 100 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: -1000 } }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, ctx({ params: { amount: -0.0001 } }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, ctx({ params: { amount: 1 } }))).toBe('RATE_LIMITED');
  });

  it.each([
    ['a numeric string', { amount: '10' }, 'NO_POLICY_MATCH'],
    ['missing', {}, 'NO_POLICY_MATCH'],
    ['null', { amount: null }, 'NO_POLICY_MATCH'],
    ['an array', { amount: [10] }, 'NO_POLICY_MATCH'],
    ['NaN', { amount: Number.NaN }, 'INVALID_CONTEXT'],
    ['Infinity', { amount: Number.POSITIVE_INFINITY }, 'INVALID_CONTEXT'],
  ])('an amount that is %s is refused and charges nothing', async (_label, params, expected) => {
    const gate = gateOf(budget(100));
    expect(await outcome(gate, ctx({ params }))).toBe(expected);
    expect(await outcome(gate, ctx({ params: { amount: 100 } }))).toBe('permit');
  });

  it('reads the amount through a JSON Pointer', async () => {
    const gate = gateOf(permitWith([{ budget: { field: '/refund/amount', max: 100, window: '1d' } }]));
    expect(await outcome(gate, ctx({ params: { refund: { amount: 60 } } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { refund: { amount: 60 } } }))).toBe('RATE_LIMITED');
  });

  it('per principal shares the budget across refund actions', async () => {
    const gate = gateOf(budget(100, 'principal'));
    expect(await outcome(gate, ctx({ actionName: 'refund.full', params: { amount: 70 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'refund.partial', params: { amount: 70 } }))).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx({ actionName: 'refund.partial', params: { amount: 30 } }))).toBe('permit');
  });

  it('many small fractional charges add up without drifting past the budget', async () => {
    const gate = gateOf(budget(1));
    let permits = 0;
    for (let i = 0; i < 15; i++) if ((await outcome(gate, ctx({ params: { amount: 0.1 } }))) === 'permit') permits++;
    expect(permits).toBe(10);
  });

  it('decimal amounts that add up to the budget exactly fit (0.1 + 0.2 within 0.3)', async () => {
    const gate = gateOf(permitWith([{ budget: { field: 'amount', max: 0.3, window: '1d' } }]));
    expect(await outcome(gate, ctx({ params: { amount: 0.1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 0.2 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 0.000001 } }))).toBe('RATE_LIMITED');
  });

  it('a window that has emptied keeps no float residue: the whole budget is free again', () => {
    const store = new InMemoryRateStore();
    const charge = (amount: number, max: number) => [{ key: 'k', amount, max, windowMs: 1_000 }];
    expect(store.checkAndCharge(charge(0.1, 100), 'a', 0).admitted).toBe(true);
    expect(store.checkAndCharge(charge(0.2, 100), 'b', 0).admitted).toBe(true);
    // 0.1 + 0.2 - 0.1 - 0.2 is 5.55e-17 in floats: a full-size charge must still fit.
    expect(store.checkAndCharge(charge(0.05, 0.05), 'c', 5_000)).toEqual({ admitted: true });
    store.refund(charge(0.05, 0.05), 'c');
    expect(store.checkAndCharge(charge(0.05, 0.05), 'd', 5_000)).toEqual({ admitted: true });
  });
});

describe('check-and-charge is atomic under concurrency', () => {
  it.each([
    ['in-memory store', undefined],
    ['an async store', 'async'],
  ])('N concurrent evaluations against max M admit exactly M (%s)', async (_label, kind) => {
    const inner = new InMemoryRateStore();
    const rate: RateStore | undefined =
      kind === 'async'
        ? {
            // Answers after a hop, like a remote store running a script atomically.
            checkAndCharge: async (c, id, now) => {
              await new Promise((r) => setTimeout(r, 1));
              return inner.checkAndCharge(c, id, now);
            },
            refund: async (c, id) => inner.refund(c, id),
          }
        : undefined;
    const gate = gateOf(limited(7, '1h'), rate ? { stores: { rate } } : {});
    const verdicts = await Promise.all(Array.from({ length: 60 }, () => gate.evaluate(ctx())));
    expect(verdicts.filter((v) => v.kind === 'permit')).toHaveLength(7);
    expect(verdicts.filter((v) => v.kind === 'refuse' && v.code === 'RATE_LIMITED')).toHaveLength(53);
  });

  it('concurrent budget charges never exceed the budget, with sessions and a slow signer in the path', async () => {
    const signer: PermitIssuer = {
      issue: async (r) => {
        await new Promise((res) => setTimeout(res, 2));
        return { token: 't', id: r.evaluationId };
      },
    };
    const gate = gateOf(budget(1000), { signer });
    const verdicts = await Promise.all(
      Array.from({ length: 40 }, (_, i) => gate.evaluate(ctx({ sessionId: `s${i % 3}`, params: { amount: 100 } }))),
    );
    expect(verdicts.filter((v) => v.kind === 'permit')).toHaveLength(10);
  });
});

describe('callId: the same call evaluated twice charges once', () => {
  it('a retried callId is admitted without a second charge', async () => {
    const gate = gateOf(limited(2, '1h'));
    expect(await outcome(gate, ctx({ callId: 'c1', params: { x: 1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ callId: 'c1', params: { x: 1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ callId: 'c1', params: { x: 1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ callId: 'c2', params: { x: 1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ callId: 'c3', params: { x: 1 } }))).toBe('RATE_LIMITED');
  });

  it('a budget is charged once for a retried callId', async () => {
    const gate = gateOf(budget(100));
    for (let i = 0; i < 4; i++) expect(await outcome(gate, ctx({ callId: 'refund-42', params: { amount: 80 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ callId: 'refund-43', params: { amount: 80 } }))).toBe('RATE_LIMITED');
  });

  it('the same callId from another principal, or with other args, does not ride free', async () => {
    const gate = gateOf(budget(100, 'global'));
    expect(await outcome(gate, ctx({ callId: 'c1', params: { amount: 80 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ callId: 'c1', principalId: 'agent-2', params: { amount: 80 } }))).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx({ callId: 'c1', params: { amount: 81 } }))).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx({ callId: 'c1', params: { amount: 80, note: 'x' } }))).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx({ callId: 'c1', actionName: 'other', params: { amount: 80 } }))).toBe('RATE_LIMITED');
    expect(await outcome(gate, ctx({ callId: 'c1', params: { amount: 80 } }))).toBe('permit');
  });

  it('argument key order does not make a retry look like a new call', async () => {
    const gate = gateOf(budget(100));
    expect(await outcome(gate, ctx({ callId: 'c1', params: { amount: 80, to: 'x' } }))).toBe('permit');
    expect(await outcome(gate, ctx({ callId: 'c1', params: { to: 'x', amount: 80 } }))).toBe('permit');
  });

  it('concurrent evaluations of one callId charge once', async () => {
    const gate = gateOf(budget(100));
    const verdicts = await Promise.all(Array.from({ length: 10 }, () => gate.evaluate(ctx({ callId: 'same', params: { amount: 60 } }))));
    expect(verdicts.every((v) => v.kind === 'permit')).toBe(true);
    expect(await outcome(gate, ctx({ callId: 'other', params: { amount: 60 } }))).toBe('RATE_LIMITED');
  });
});

describe('charges are refunded when a later step refuses', () => {
  it('a signer whose issue() rejects → SIGNING_FAILED, and the charge is taken back', async () => {
    let fail = true;
    const signer: PermitIssuer = {
      issue: async (r) => {
        if (fail) throw new Error('HSM unreachable');
        return { token: 't', id: r.evaluationId };
      },
    };
    const gate = gateOf(limited(1, '1h'), { signer });
    const v = await gate.evaluate(ctx());
    expect(v).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED', evaluator: 'signer' });
    expect(v.kind === 'refuse' && v.reason).toMatch(/HSM unreachable/);
    fail = false;
    const ok = await gate.evaluate(ctx());
    expect(ok.kind).toBe('permit');
    expect(ok.kind === 'permit' && ok.permit).toBe(`t`);
    expect(await outcome(gate, ctx())).toBe('RATE_LIMITED');
  });

  it('a signer that throws synchronously is SIGNING_FAILED too', async () => {
    const signer = {
      issue: () => {
        throw new Error('no key');
      },
    } as unknown as PermitIssuer;
    expect(await outcome(gateOf(limited(1)), ctx())).toBe('permit');
    expect(await outcome(gateOf(limited(1), { signer }), ctx())).toBe('SIGNING_FAILED');
  });

  it('an audit sink that fails → STORE_UNAVAILABLE, no permit, and the charge is taken back', async () => {
    let down = true;
    const events: GateEvent[] = [];
    const audit = {
      append: async (e: GateEvent) => {
        if (down) throw new Error('disk full');
        events.push(e);
      },
    };
    const gate = gateOf(budget(100), { audit, signer: okSigner });
    const v = await gate.evaluate(ctx({ params: { amount: 100 } }));
    expect(v).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE' });
    expect((v as Verdict & { permit?: string }).permit).toBeUndefined();
    down = false;
    expect(await outcome(gate, ctx({ params: { amount: 100 } }))).toBe('permit');
    expect(events.filter((e) => e.type === 'verdict')).toHaveLength(1);
  });

  it('a retried callId whose signing fails does not take back the first, permitted, charge', async () => {
    let fail = false;
    const signer: PermitIssuer = {
      issue: async (r) => {
        if (fail) throw new Error('HSM down');
        return { token: 't', id: r.evaluationId };
      },
    };
    const gate = gateOf(limited(1, '1h'), { signer });
    expect(await outcome(gate, ctx({ callId: 'c1' }))).toBe('permit');
    fail = true;
    expect(await outcome(gate, ctx({ callId: 'c1' }))).toBe('SIGNING_FAILED');
    fail = false;
    // The first call was permitted and ran: the limit is still used up.
    expect(await outcome(gate, ctx({ callId: 'c2' }))).toBe('RATE_LIMITED');
  });

  it('a retried callId whose audit fails does not take back the first charge either', async () => {
    let down = false;
    const audit = {
      append: async () => {
        if (down) throw new Error('disk full');
      },
    };
    const gate = gateOf(budget(100), { audit });
    expect(await outcome(gate, ctx({ callId: 'c1', params: { amount: 100 } }))).toBe('permit');
    down = true;
    expect(await outcome(gate, ctx({ callId: 'c1', params: { amount: 100 } }))).toBe('STORE_UNAVAILABLE');
    down = false;
    expect(await outcome(gate, ctx({ callId: 'c2', params: { amount: 100 } }))).toBe('RATE_LIMITED');
  });

  it('a refund that fails leaves the limit charged (fail closed) and the refusal stands', async () => {
    const inner = new InMemoryRateStore();
    const rate: RateStore = {
      checkAndCharge: (c, id, now) => inner.checkAndCharge(c, id, now),
      refund: () => {
        throw new Error('redis gone');
      },
    };
    const signer = {
      issue: async () => {
        throw new Error('no key');
      },
    };
    const gate = gateOf(limited(1, '1h'), { signer, stores: { rate } });
    expect(await outcome(gate, ctx())).toBe('SIGNING_FAILED');
    expect(await outcome(gateOf(limited(1, '1h'), { signer: okSigner, stores: { rate } }), ctx())).toBe('RATE_LIMITED');
  });
});

describe('a charge is refunded at most once', () => {
  it('observe mode with a failing signer and a failing audit log refunds the call once', async () => {
    const inner = new InMemoryRateStore();
    const refunds: string[] = [];
    const rate: RateStore = {
      checkAndCharge: (charges, id, now) => inner.checkAndCharge(charges, id, now),
      refund: (charges, id) => {
        refunds.push(id);
        inner.refund(charges, id);
      },
    };
    const gate = gateOf(permitWith([{ rate_limit: { max: 2, window: '1h' } }]), {
      observeOnly: true,
      stores: { rate },
      signer: {
        issue: async () => {
          throw new Error('hsm offline');
        },
      },
      audit: {
        append: async () => {
          throw new Error('disk full');
        },
      },
    });
    const v = await gate.evaluate(ctx());
    expect(code(v)).toBe('STORE_UNAVAILABLE');
    expect(refunds).toHaveLength(1);
  });
});

describe('a retried callId rides free only as the very same call', () => {
  it('another resource, audience or session under one callId is charged as a new call', async () => {
    const gate = gateOf(permitWith([{ budget: { field: 'amount', max: 100, window: '1d', per: 'principal' } }]));
    const call = (over: Partial<ActionContext> = {}) =>
      ctx({ callId: 'c1', params: { amount: 80 }, resource: 'acct:1', audience: 'payments', sessionId: 's1', ...over });
    expect(code(await gate.evaluate(call()))).toBe('permit');
    expect(code(await gate.evaluate(call()))).toBe('permit');
    expect(code(await gate.evaluate(call({ resource: 'acct:2' })))).toBe('RATE_LIMITED');
    expect(code(await gate.evaluate(call({ audience: 'ledger' })))).toBe('RATE_LIMITED');
    expect(code(await gate.evaluate(call({ sessionId: 's2' })))).toBe('RATE_LIMITED');
    expect(code(await gate.evaluate(call()))).toBe('permit');
  });
});
