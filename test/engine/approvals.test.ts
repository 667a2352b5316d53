import { describe, expect, it } from 'vitest';
import {
  ApprovalError,
  InMemoryApprovalStore,
  StoreUnavailableError,
  type ApprovalStore,
  type AuditSink,
  type GateEvent,
  type PermitIssuer,
  type RateStore,
} from '../../src/engine/index.ts';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import { code, gateOf, manualClock } from './helpers.ts';
import { ALICE, BOB, CAROL, MALLORY, refund, refundPolicy, requestId } from './approvals-helpers.ts';

async function approvalCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApprovalError) return err.code;
    throw err;
  }
  return 'resolved';
}

describe('a call an approve policy matches', () => {
  it('is refused APPROVAL_REQUIRED with the request id and its expiry on the verdict', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy(), { clock: clock.now });
    const v = await gate.evaluate(refund(600));
    expect(v).toMatchObject({ kind: 'refuse', code: 'APPROVAL_REQUIRED', evaluator: 'approval', policy: 'big_refunds_need_a_human' });
    if (v.kind !== 'refuse') return;
    expect(v.approval).toEqual({ id: expect.any(String), expiresAt: clock.now() + 15 * 60_000 });
    expect(v.reason).toContain('refunds of 500 or more');
    expect(v.reason).toContain(v.approval?.id);
  });

  it('makes one request per call: evaluated again while it waits, the same call gets the same id', async () => {
    const gate = gateOf(refundPolicy());
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add(requestId(await gate.evaluate(refund(600))));
    expect(ids.size).toBe(1);
    expect(await gate.approvals.list()).toHaveLength(1);
  });

  it('makes another request for a call that differs in arguments, session, resource, audience or principal', async () => {
    const gate = gateOf(refundPolicy());
    // Without a session, so that another principal may make the same call (a session has one owner).
    const call = (amount: number, extra: Parameters<typeof refund>[1] = {}) => {
      const c = refund(amount, extra);
      if (extra.sessionId === undefined) delete c.sessionId;
      return c;
    };
    const base = requestId(await gate.evaluate(call(600)));
    const others = [
      call(601),
      call(600, { sessionId: 's-2' }),
      call(600, { resource: 'shop-2' }),
      call(600, { audience: 'payments' }),
      call(600, { principalId: 'agent-8' }),
      call(600, { principalKind: 'service' }),
      call(600, { params: { amount: 600, order: 'o-2' } }),
    ];
    const ids = await Promise.all(others.map(async (c) => requestId(await gate.evaluate(c))));
    expect(new Set([base, ...ids]).size).toBe(others.length + 1);
  });

  it('shows the request with the call it is bound to, the reason, and the arguments minus approvalRedact paths', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy(), { clock: clock.now, approvalRedact: ['/card/number'] });
    const params = { amount: 700, card: { number: '4111111111111111', last4: '1111' } };
    const id = requestId(await gate.evaluate(refund(700, { params, resource: 'shop-1', audience: 'payments', roles: ['support'] })));
    const r = await gate.approvals.get(id);
    expect(r).toEqual({
      id,
      status: 'pending',
      policy: 'big_refunds_need_a_human',
      reason: 'refunds of 500 or more',
      principal: { id: 'agent-7', kind: 'agent', roles: ['support'] },
      action: 'refunds.issue',
      resource: 'shop-1',
      audience: 'payments',
      sessionId: 's-1',
      argsHash: hashArgs(params),
      args: { amount: 700, card: { last4: '1111' } },
      createdAt: clock.now(),
      expiresAt: clock.now() + 900_000,
      decisions: [],
    });
  });

  it('uses the policy name as the reason when it has no description', async () => {
    const gate = gateOf({ policies: [{ name: 'ask', effect: 'approve', conditions: [] }] });
    const id = requestId(await gate.evaluate(refund(1)));
    expect((await gate.approvals.get(id))?.reason).toBe('ask');
  });

  it('refuses a bad approvalRedact pointer when the gate is made', () => {
    expect(() => gateOf(refundPolicy(), { approvalRedact: ['amount'] })).toThrow(/JSON Pointer/);
  });
});

describe('a granted call', () => {
  it('is permitted, naming the approval, exactly `uses` times; then the same call makes a new request', async () => {
    const gate = gateOf(refundPolicy({ uses: 2 }));
    const id = requestId(await gate.evaluate(refund(600)));
    const granted = await gate.approvals.decide(id, { approver: ALICE, decision: 'grant', note: 'customer called' });
    expect(granted.status).toBe('granted');
    expect(granted.decisions).toEqual([{ approver: ALICE, decision: 'grant', note: 'customer called', at: expect.any(Number) }]);
    const first = await gate.evaluate(refund(600));
    const second = await gate.evaluate(refund(600));
    expect(first).toMatchObject({ kind: 'permit', policy: 'big_refunds_need_a_human', approval: { id } });
    expect(second).toMatchObject({ kind: 'permit', approval: { id } });
    expect((await gate.approvals.get(id))?.status).toBe('used');
    const next = await gate.evaluate(refund(600));
    expect(code(next)).toBe('APPROVAL_REQUIRED');
    expect(requestId(next)).not.toBe(id);
  });

  it('never lets another call through: other arguments need their own approval', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect(code(await gate.evaluate(refund(6_000)))).toBe('APPROVAL_REQUIRED');
    expect(code(await gate.evaluate(refund(600, { sessionId: 's-other' })))).toBe('APPROVAL_REQUIRED');
    expect(code(await gate.evaluate(refund(600)))).toBe('permit');
  });

  it('lapses grant_ttl after the grant, by the gate clock: expired, and the next call asks again', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy({ grant_ttl: '5m' }), { clock: clock.now });
    const id = requestId(await gate.evaluate(refund(600)));
    clock.advance(10 * 60_000); // long after the request was made, but before its 15m timeout
    const granted = await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect(granted.expiresAt).toBe(clock.now() + 5 * 60_000);
    clock.advance(5 * 60_000);
    const after = await gate.evaluate(refund(600));
    expect(code(after)).toBe('APPROVAL_REQUIRED');
    expect(requestId(after)).not.toBe(id);
    expect((await gate.approvals.get(id))?.status).toBe('expired');
  });

  it('is still refused by a refuse policy, an invariant, drift or an invalidated session', async () => {
    const refuseHuge = {
      name: 'no',
      effect: 'refuse',
      conditions: [{ action: 'refunds.issue' }, { param_in: { field: 'order', values: ['o-banned'] } }],
    };
    const gate = gateOf(refundPolicy({ uses: 5 }, [refuseHuge]), {
      invariants: [{ name: 'cap', param_max: { field: 'amount', max: 5_000 } }],
      drift: {},
    });
    // A request exists and is granted for a call that a refuse policy matches once reloaded.
    const ok = refund(600);
    const id = requestId(await gate.evaluate(ok));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    // Invariant: a grant for 6000 is never reached (the invariant refuses before any request).
    expect(code(await gate.evaluate(refund(6_000)))).toBe('INVARIANT_VIOLATION');
    expect(code(await gate.evaluate(refund(600, { params: { amount: 600, order: 'o-banned' } })))).toBe('POLICY_DENIED');
    // Drift: the granted call, in a session that started at another IP.
    const fromOffice = refund(600, { sessionId: 's-d', ip: '10.0.0.1' });
    const drifting = requestId(await gate.evaluate(fromOffice));
    await gate.approvals.decide(drifting, { approver: ALICE, decision: 'grant' });
    expect(code(await gate.evaluate({ ...fromOffice, ip: '203.0.113.9' }))).toBe('invalidate');
    expect(code(await gate.evaluate(fromOffice))).toBe('SESSION_INVALID');
    expect((await gate.approvals.get(drifting))?.status).toBe('granted');
    // An invalidated session: the first grant, still unused, does not revive it.
    await gate.invalidate({ type: 'session', sessionId: 's-1' });
    expect(code(await gate.evaluate(ok))).toBe('SESSION_INVALID');
    expect((await gate.approvals.get(id))?.status).toBe('granted');
  });

  it('is refused when the grant has been used by a concurrent retry (uses = 1: exactly one permit)', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => gate.evaluate(refund(600))));
    expect(verdicts.filter((v) => v.kind === 'permit')).toHaveLength(1);
    expect(verdicts.filter((v) => code(v) === 'APPROVAL_REQUIRED')).toHaveLength(19);
  });
});

describe('deciding', () => {
  it('a deny denies: the call is refused APPROVAL_DENIED until its request expires, then asks again', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy({ timeout: '10m' }), { clock: clock.now });
    const id = requestId(await gate.evaluate(refund(600)));
    const denied = await gate.approvals.decide(id, { approver: BOB, decision: 'deny', note: 'not this one' });
    expect(denied.status).toBe('denied');
    const v = await gate.evaluate(refund(600));
    expect(v).toMatchObject({ kind: 'refuse', code: 'APPROVAL_DENIED', approval: { id, expiresAt: denied.expiresAt } });
    clock.advance(9 * 60_000);
    expect(code(await gate.evaluate(refund(600)))).toBe('APPROVAL_DENIED');
    clock.advance(60_000);
    const again = await gate.evaluate(refund(600));
    expect(code(again)).toBe('APPROVAL_REQUIRED');
    expect(requestId(again)).not.toBe(id);
  });

  it('needs `quorum` distinct approvers; the same approver twice counts once', async () => {
    const gate = gateOf(refundPolicy({ quorum: 2 }));
    const id = requestId(await gate.evaluate(refund(600)));
    expect((await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' })).status).toBe('pending');
    expect((await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' })).status).toBe('pending');
    expect(code(await gate.evaluate(refund(600)))).toBe('APPROVAL_REQUIRED');
    expect((await gate.approvals.decide(id, { approver: BOB, decision: 'grant' })).status).toBe('granted');
    expect(code(await gate.evaluate(refund(600)))).toBe('permit');
  });

  it('one deny denies, even after grants toward the quorum', async () => {
    const gate = gateOf(refundPolicy({ quorum: 3 }));
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    await gate.approvals.decide(id, { approver: BOB, decision: 'grant' });
    expect((await gate.approvals.decide(id, { approver: CAROL, decision: 'deny' })).status).toBe('denied');
    expect(code(await gate.evaluate(refund(600)))).toBe('APPROVAL_DENIED');
  });

  it('nobody decides their own call (SELF_APPROVAL), even when listed as an approver', async () => {
    const gate = gateOf(refundPolicy({ approvers: ['id:agent-7', 'role:finance'] }));
    const id = requestId(await gate.evaluate(refund(600)));
    for (const decision of ['grant', 'deny'] as const) {
      expect(
        await approvalCode(gate.approvals.decide(id, { approver: { id: 'agent-7', kind: 'agent', roles: ['finance'] }, decision })),
      ).toBe('SELF_APPROVAL');
    }
    expect((await gate.approvals.get(id))?.decisions).toEqual([]);
  });

  it('only listed approvers decide: by role or by id (NOT_AN_APPROVER otherwise)', async () => {
    const gate = gateOf(refundPolicy({ approvers: ['role:finance', 'id:dave'] }));
    const id = requestId(await gate.evaluate(refund(600)));
    expect(await approvalCode(gate.approvals.decide(id, { approver: MALLORY, decision: 'grant' }))).toBe('NOT_AN_APPROVER');
    expect(await approvalCode(gate.approvals.decide(id, { approver: { id: 'finance', kind: 'user' }, decision: 'grant' }))).toBe(
      'NOT_AN_APPROVER',
    );
    expect(
      await approvalCode(gate.approvals.decide(id, { approver: { id: 'eve', kind: 'user', roles: ['id:dave'] }, decision: 'grant' })),
    ).toBe('NOT_AN_APPROVER');
    expect((await gate.approvals.decide(id, { approver: { id: 'dave', kind: 'user' }, decision: 'grant' })).status).toBe('granted');
  });

  it('with no approvers listed, anyone but the caller decides', async () => {
    const gate = gateOf({ policies: [{ name: 'ask', effect: 'approve', conditions: [] }] });
    const id = requestId(await gate.evaluate(refund(1)));
    expect(await approvalCode(gate.approvals.decide(id, { approver: { id: 'agent-7', kind: 'agent' }, decision: 'grant' }))).toBe(
      'SELF_APPROVAL',
    );
    expect((await gate.approvals.decide(id, { approver: MALLORY, decision: 'grant' })).status).toBe('granted');
  });

  it('NOT_FOUND for an unknown id, NOT_PENDING once decided, EXPIRED once lapsed', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy(), { clock: clock.now });
    expect(await approvalCode(gate.approvals.decide('nope', { approver: ALICE, decision: 'grant' }))).toBe('NOT_FOUND');
    const decided = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(decided, { approver: ALICE, decision: 'deny' });
    expect(await approvalCode(gate.approvals.decide(decided, { approver: BOB, decision: 'grant' }))).toBe('NOT_PENDING');
    const lapsed = requestId(await gate.evaluate(refund(601)));
    clock.advance(15 * 60_000);
    expect(await approvalCode(gate.approvals.decide(lapsed, { approver: ALICE, decision: 'grant' }))).toBe('EXPIRED');
    expect((await gate.approvals.get(lapsed))?.status).toBe('expired');
  });

  it('a request nobody decides in time expires by the gate clock, and the same call makes a new one', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy({ timeout: '2m' }), { clock: clock.now });
    const id = requestId(await gate.evaluate(refund(600)));
    clock.advance(2 * 60_000 - 1);
    expect(requestId(await gate.evaluate(refund(600)))).toBe(id);
    clock.advance(1);
    const next = requestId(await gate.evaluate(refund(600)));
    expect(next).not.toBe(id);
    expect((await gate.approvals.get(id))?.status).toBe('expired');
  });

  it('refuses malformed decisions with a TypeError before touching the request', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    await expect(gate.approvals.decide(id, { approver: ALICE, decision: 'maybe' as 'grant' })).rejects.toThrow(TypeError);
    await expect(gate.approvals.decide(id, { approver: { id: '', kind: 'user' }, decision: 'grant' })).rejects.toThrow(TypeError);
    await expect(gate.approvals.decide(id, { approver: { id: 'x', kind: 'robot' as 'user' }, decision: 'grant' })).rejects.toThrow(
      TypeError,
    );
    await expect(gate.approvals.decide(id, { approver: ALICE, decision: 'grant', note: 'x'.repeat(5_000) })).rejects.toThrow(TypeError);
    expect((await gate.approvals.get(id))?.status).toBe('pending');
  });

  it('keeps a copy of the approver: changing the object afterwards changes nothing recorded', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    const approver = { id: 'alice', kind: 'user' as const, roles: ['finance'] };
    await gate.approvals.decide(id, { approver, decision: 'grant' });
    approver.roles.push('admin');
    approver.id = 'mallory';
    expect((await gate.approvals.get(id))?.decisions[0]?.approver).toEqual({ id: 'alice', kind: 'user', roles: ['finance'] });
  });
});

describe('gate.approvals.list / get', () => {
  it('lists newest first, by status and by principal', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy(), { clock: clock.now });
    const a = requestId(await gate.evaluate(refund(600)));
    clock.advance(1);
    const b = requestId(await gate.evaluate(refund(700, { principalId: 'agent-8', sessionId: 's-8' })));
    clock.advance(1);
    const c = requestId(await gate.evaluate(refund(800)));
    await gate.approvals.decide(c, { approver: ALICE, decision: 'deny' });
    expect((await gate.approvals.list()).map((r) => r.id)).toEqual([c, b, a]);
    expect((await gate.approvals.list({ status: 'pending' })).map((r) => r.id)).toEqual([b, a]);
    expect((await gate.approvals.list({ principalId: 'agent-8' })).map((r) => r.id)).toEqual([b]);
    expect((await gate.approvals.list({ status: 'denied', principalId: 'agent-7' })).map((r) => r.id)).toEqual([c]);
    await expect(gate.approvals.list({ status: 'waiting' as 'pending' })).rejects.toThrow(TypeError);
  });

  it('get answers undefined for an unknown or malformed id', async () => {
    const gate = gateOf(refundPolicy());
    expect(await gate.approvals.get('nope')).toBeUndefined();
    expect(await gate.approvals.get(42 as unknown as string)).toBeUndefined();
  });

  it('hands out copies: changing one changes nothing stored', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    const r = await gate.approvals.get(id);
    if (!r) throw new Error('missing');
    r.status = 'granted';
    (r.args as { amount: number }).amount = 1;
    expect(await gate.approvals.get(id)).toMatchObject({ status: 'pending', args: { amount: 600 } });
    expect(code(await gate.evaluate(refund(600)))).toBe('APPROVAL_REQUIRED');
  });
});

describe('gate.approvals.wait', () => {
  it('resolves when the request is decided', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    const waiting = gate.approvals.wait(id);
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect((await waiting).status).toBe('granted');
  });

  it('answers at once for a request already decided or lapsed', async () => {
    const clock = manualClock();
    const gate = gateOf(refundPolicy(), { clock: clock.now });
    const id = requestId(await gate.evaluate(refund(600)));
    clock.advance(15 * 60_000);
    expect((await gate.approvals.wait(id)).status).toBe('expired');
  });

  it('answers with the pending request when timeoutMs passes', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    expect((await gate.approvals.wait(id, { timeoutMs: 0 })).status).toBe('pending');
    expect((await gate.approvals.wait(id, { timeoutMs: 20 })).status).toBe('pending');
  });

  it('rejects with the signal reason when aborted, and NOT_FOUND for an unknown id', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    const controller = new AbortController();
    const waiting = gate.approvals.wait(id, { signal: controller.signal });
    controller.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    await expect(gate.approvals.wait(id, { signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
    expect(await approvalCode(gate.approvals.wait('nope'))).toBe('NOT_FOUND');
    await expect(gate.approvals.wait(id, { timeoutMs: -1 })).rejects.toThrow(TypeError);
  });
});

describe('rate limits and budgets of an approve policy', () => {
  const limitedApprove = (limit: Record<string, unknown>) => ({
    policies: [{ name: 'ask', effect: 'approve', conditions: [{ action: 'refunds.issue' }, limit], approval: { uses: 5 } }],
  });

  it('are charged when the approved call runs, not when it is asked for', async () => {
    const gate = gateOf(limitedApprove({ rate_limit: { max: 1, window: '1h' } }));
    // Many requests for different calls: none is charged.
    const ids = [];
    for (let i = 1; i <= 3; i++) ids.push(requestId(await gate.evaluate(refund(i))));
    for (const id of ids) await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect(code(await gate.evaluate(refund(1)))).toBe('permit');
    expect(code(await gate.evaluate(refund(2)))).toBe('RATE_LIMITED');
  });

  it('give back the use a rate-limited approved call took', async () => {
    const clock = manualClock();
    const gate = gateOf(
      {
        policies: [
          {
            name: 'ask',
            effect: 'approve',
            conditions: [{ action: 'refunds.issue' }, { budget: { field: 'amount', max: 1_000, window: '1h' } }],
            approval: { uses: 1, grant_ttl: '2h' },
          },
        ],
      },
      { clock: clock.now },
    );
    const small = requestId(await gate.evaluate(refund(900)));
    const big = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(small, { approver: ALICE, decision: 'grant' });
    await gate.approvals.decide(big, { approver: ALICE, decision: 'grant' });
    expect(code(await gate.evaluate(refund(900)))).toBe('permit');
    expect(await gate.evaluate(refund(600))).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) });
    expect((await gate.approvals.get(big))?.status).toBe('granted');
    clock.advance(60 * 60_000);
    expect(await gate.evaluate(refund(600))).toMatchObject({ kind: 'permit', approval: { id: big } });
  });
});

describe('a use taken by a call refused later on is given back', () => {
  async function grantedGate(opts: Parameters<typeof gateOf>[1]) {
    const gate = gateOf(refundPolicy(), opts);
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    return { gate, id };
  }

  it('when signing fails', async () => {
    let fail = true;
    const signer: PermitIssuer = {
      issue: async (req) => {
        if (fail) throw new Error('HSM offline');
        return { token: `token-for-${req.approvalId}`, id: 'jti-1' };
      },
    };
    const { gate, id } = await grantedGate({ signer });
    expect(code(await gate.evaluate(refund(600)))).toBe('SIGNING_FAILED');
    expect((await gate.approvals.get(id))?.status).toBe('granted');
    fail = false;
    expect(await gate.evaluate(refund(600))).toMatchObject({ kind: 'permit', permit: `token-for-${id}`, approval: { id } });
  });

  it('when the audit log cannot record the permit', async () => {
    let fail = false;
    const audit: AuditSink = { append: async () => (fail ? Promise.reject(new Error('disk full')) : undefined) };
    const { gate, id } = await grantedGate({ audit, onWarning: () => {} });
    fail = true;
    expect(await gate.evaluate(refund(600))).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE', evaluator: 'audit' });
    fail = false;
    expect((await gate.approvals.get(id))?.status).toBe('granted');
    expect(code(await gate.evaluate(refund(600)))).toBe('permit');
  });

  it('when the rate store fails after the use was taken', async () => {
    let fail = true;
    const rate: RateStore = {
      checkAndCharge: () => {
        if (fail) throw new Error('redis gone');
        return { admitted: true };
      },
      refund: () => undefined,
    };
    const gate = gateOf(
      { policies: [{ name: 'ask', effect: 'approve', conditions: [{ rate_limit: { max: 9, window: '1m' } }] }] },
      { stores: { rate } },
    );
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect(code(await gate.evaluate(refund(600)))).toBe('STORE_UNAVAILABLE');
    fail = false;
    expect(code(await gate.evaluate(refund(600)))).toBe('permit');
  });

  it('when the policies change while the call is concluded, and it is judged again', async () => {
    let release: () => void = () => {};
    const signing = new Promise<void>((r) => (release = r));
    const signer: PermitIssuer = { issue: async () => (await signing, { token: 't', id: 'j' }) };
    const { gate, id } = await grantedGate({ signer });
    const pending = gate.evaluate(refund(600));
    await Promise.resolve();
    gate.reload(refundPolicy({}, [{ name: 'stop', effect: 'refuse', conditions: [{ action: 'refunds.*' }] }]));
    release();
    expect(code(await pending)).toBe('POLICY_DENIED');
    expect((await gate.approvals.get(id))?.status).toBe('granted');
  });
});

describe('reloads', () => {
  it('a changed approval rule asks again: a grant made under the old rule does not count', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    gate.reload(refundPolicy({ quorum: 2 }));
    const v = await gate.evaluate(refund(600));
    expect(code(v)).toBe('APPROVAL_REQUIRED');
    expect(requestId(v)).not.toBe(id);
  });

  it('an unchanged rule keeps its grants across a reload', async () => {
    const gate = gateOf(refundPolicy());
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    gate.reload(refundPolicy());
    expect(await gate.evaluate(refund(600))).toMatchObject({ kind: 'permit', approval: { id } });
  });
});

describe('observe mode', () => {
  it('looks only: no request is made and no use is taken', async () => {
    const gate = gateOf(refundPolicy());
    const observed = await gate.evaluate(refund(600), { observe: true });
    expect(observed).toMatchObject({ kind: 'permit', observed: { kind: 'refuse', code: 'APPROVAL_REQUIRED' } });
    expect(await gate.approvals.list()).toEqual([]);
    const id = requestId(await gate.evaluate(refund(600)));
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect(await gate.evaluate(refund(600), { observe: true })).toMatchObject({ kind: 'permit', observed: { kind: 'permit' } });
    expect((await gate.approvals.get(id))?.status).toBe('granted');
    expect(await gate.evaluate(refund(600))).toMatchObject({ kind: 'permit', approval: { id } });
  });
});

describe('a failing approval store', () => {
  const broken = (overrides: Partial<ApprovalStore>): ApprovalStore => Object.assign(new InMemoryApprovalStore(), overrides);

  it('refuses STORE_UNAVAILABLE when it throws, rejects or answers nonsense, never permits', async () => {
    const answers: Partial<ApprovalStore>[] = [
      {
        open: () => {
          throw new StoreUnavailableError('down');
        },
      },
      { open: async () => Promise.reject(new Error('timeout')) },
      { open: () => ({ outcome: 'used' }) as never },
      { open: () => ({ outcome: 'granted', id: 'x', expiresAt: 1, usesLeft: 0 }) },
      { open: () => ({ outcome: 'sure' }) as never },
      { open: () => null as never },
      { open: () => ({ outcome: 'used', id: 'x', expiresAt: 1 }) },
    ];
    for (const overrides of answers) {
      const gate = gateOf(refundPolicy(), { stores: { approval: broken(overrides) } });
      expect(code(await gate.evaluate(refund(600)))).toBe('STORE_UNAVAILABLE');
      expect(code(await gate.evaluate(refund(100)))).toBe('permit');
    }
  });
});

describe('audit events', () => {
  it('records the request, each decision with approver and note, the use, and the verdicts naming the approval', async () => {
    const events: GateEvent[] = [];
    const gate = gateOf(refundPolicy({ quorum: 2 }), { audit: { append: async (e) => void events.push(e) } });
    const refused = await gate.evaluate(refund(600));
    const id = requestId(refused);
    await gate.approvals.decide(id, { approver: ALICE, decision: 'grant', note: 'ok by me' });
    await gate.approvals.decide(id, { approver: BOB, decision: 'grant' });
    const permit = await gate.evaluate(refund(600));
    const kinds = events.map((e) =>
      e.type === 'approval' ? `approval:${e.event}:${e.status}` : `${e.type}:${e.type === 'verdict' ? e.verdict : ''}`,
    );
    expect(kinds).toEqual([
      'approval:requested:pending',
      'verdict:refuse',
      'approval:granted:pending',
      'approval:granted:granted',
      'approval:used:used',
      'verdict:permit',
    ]);
    expect(events[0]).toMatchObject({
      approval: id,
      policy: 'big_refunds_need_a_human',
      principal: 'agent-7',
      principalKind: 'agent',
      action: 'refunds.issue',
      session: 's-1',
      args: hashArgs({ amount: 600, order: 'o-1' }),
      evaluationId: refused.evaluationId,
    });
    expect(events[1]).toMatchObject({ type: 'verdict', code: 'APPROVAL_REQUIRED', approval: id });
    expect(events[2]).toMatchObject({ approver: 'alice', approverKind: 'user', approverRoles: ['finance'], note: 'ok by me' });
    expect(events[4]).toMatchObject({ evaluationId: permit.evaluationId });
    expect(events[5]).toMatchObject({ type: 'verdict', verdict: 'permit', approval: id });
  });

  it('records an expiry once, when it is first noticed', async () => {
    const events: GateEvent[] = [];
    const clock = manualClock();
    const gate = gateOf(refundPolicy(), { clock: clock.now, audit: { append: async (e) => void events.push(e) } });
    const id = requestId(await gate.evaluate(refund(600)));
    clock.advance(15 * 60_000);
    await gate.approvals.list();
    await gate.approvals.get(id);
    await gate.evaluate(refund(600));
    expect(events.filter((e) => e.type === 'approval' && e.event === 'expired').map((e) => e.type === 'approval' && e.approval)).toEqual([
      id,
    ]);
  });

  it('a decision the audit log cannot record is reported to whoever decided', async () => {
    let fail = false;
    const warnings: string[] = [];
    const gate = gateOf(refundPolicy(), {
      audit: { append: async () => (fail ? Promise.reject(new Error('disk full')) : undefined) },
      onWarning: (m) => warnings.push(m),
    });
    const id = requestId(await gate.evaluate(refund(600)));
    fail = true;
    await expect(gate.approvals.decide(id, { approver: ALICE, decision: 'grant' })).rejects.toThrow(StoreUnavailableError);
    expect(warnings.join('\n')).toContain('disk full');
  });
});
