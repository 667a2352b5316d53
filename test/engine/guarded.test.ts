import { describe, expect, expectTypeOf, it } from 'vitest';
import { InvalidatedError, RefusedError, guarded, type ActionContext, type GateEvent, type Principal } from '../../src/engine/index.ts';
import { gateOf, manualClock } from './helpers.ts';

const BOT: Principal = { id: 'agent-bot', kind: 'agent' };
const REFUNDS = {
  policies: [
    {
      name: 'small_refunds',
      effect: 'permit',
      conditions: [{ identity_kind: 'agent' }, { action: 'issue_refund' }, { param_max: { field: 'amount', max: 1000 } }],
    },
  ],
};

/** A refund function that counts its runs. */
function refunds() {
  const runs: [string, number][] = [];
  const issue = async (orderId: string, amount: number) => {
    runs.push([orderId, amount]);
    return { status: 'refunded' as const, orderId, amount };
  };
  return { runs, issue };
}

async function refusal(p: Promise<unknown>): Promise<RefusedError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RefusedError);
  return err as RefusedError;
}

describe('guarded()', () => {
  it('runs an async function on Permit and returns its result', async () => {
    const { runs, issue } = refunds();
    const refund = guarded(gateOf(REFUNDS), 'issue_refund', issue, { principal: BOT, params: (_order, amount) => ({ amount }) });
    await expect(refund('ORD-1', 500)).resolves.toEqual({ status: 'refunded', orderId: 'ORD-1', amount: 500 });
    expect(runs).toEqual([['ORD-1', 500]]);
  });

  it('never runs the function on Refuse: RefusedError carries the verdict', async () => {
    const { runs, issue } = refunds();
    const refund = guarded(gateOf(REFUNDS), 'issue_refund', issue, { principal: BOT, params: (_order, amount) => ({ amount }) });
    const err = await refusal(refund('ORD-2', 5000));
    expect(err.code).toBe('NO_POLICY_MATCH');
    expect(err.verdict).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH', evaluator: 'policy' });
    expect(runs).toEqual([]);
  });

  it('without params the gate judges no params, so a param condition fails closed', async () => {
    const { runs, issue } = refunds();
    const refund = guarded(gateOf(REFUNDS), 'issue_refund', issue, { principal: BOT });
    expect((await refusal(refund('ORD-3', 1))).code).toBe('NO_POLICY_MATCH');
    expect(runs).toEqual([]);
  });

  it('wraps a sync function too (its result and its own errors come back through the promise)', async () => {
    const gate = gateOf({ policies: [{ name: 'all', effect: 'permit', conditions: [] }] });
    const add = guarded(gate, 'math.add', (a: number, b: number) => a + b, { principal: BOT });
    await expect(add(2, 3)).resolves.toBe(5);
    const boom = guarded(
      gate,
      'math.boom',
      (): number => {
        throw new RangeError('inside fn');
      },
      { principal: BOT },
    );
    await expect(boom()).rejects.toThrow(RangeError);
  });

  it('computes the principal from the arguments', async () => {
    const gate = gateOf({ policies: [{ name: 'admins', effect: 'permit', conditions: [{ identity_role: 'admin' }] }] });
    const ran: string[] = [];
    const del = guarded(gate, 'users.delete', (_user: { id: string; roles: string[] }, target: string) => void ran.push(target), {
      principal: (user) => ({ id: user.id, kind: 'user', roles: user.roles }),
    });
    await del({ id: 'alice', roles: ['admin'] }, 'u-1');
    expect((await refusal(del({ id: 'bob', roles: ['dev'] }, 'u-2'))).code).toBe('NO_POLICY_MATCH');
    expect(ran).toEqual(['u-1']);
  });

  it('passes context (session, ip, resource...) to the gate, and an invalidated session rejects with InvalidatedError', async () => {
    const clock = manualClock();
    const gate = gateOf(
      { policies: [{ name: 'all', effect: 'permit', conditions: [{ resource: 'orders/*' }] }] },
      { drift: {}, clock: clock.now },
    );
    let runs = 0;
    const read = guarded(gate, 'orders.read', (_req: { session: string; ip: string; order: string }) => ++runs, {
      principal: BOT,
      context: (req) => ({ sessionId: req.session, ip: req.ip, resource: `orders/${req.order}` }),
    });
    await expect(read({ session: 's1', ip: '10.0.0.1', order: '7' })).resolves.toBe(1);
    const err = await read({ session: 's1', ip: '203.0.113.9', order: '7' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidatedError);
    expect((err as InvalidatedError).verdict.scope).toEqual({ type: 'session', sessionId: 's1' });
    expect(runs).toBe(1);
  });

  it('refuses INVALID_CONTEXT without running fn when params, principal or context throws', async () => {
    const gate = gateOf({ policies: [{ name: 'all', effect: 'permit', conditions: [] }] });
    let runs = 0;
    const fn = (_x: number) => ++runs;
    const broken = (): never => {
      throw new Error('lookup failed');
    };
    for (const opts of [{ principal: BOT, params: broken }, { principal: broken }, { principal: BOT, context: broken }]) {
      const err = await refusal(guarded(gate, 'tool.run', fn, opts)(1));
      expect(err.verdict).toMatchObject({ code: 'INVALID_CONTEXT', evaluator: 'guarded' });
      expect(err.verdict.reason).toMatch(/threw: lookup failed/);
    }
    expect(runs).toBe(0);
  });

  it('refuses a context that would set the principal, action or params, and whatever the gate finds invalid', async () => {
    const gate = gateOf({ policies: [{ name: 'all', effect: 'permit', conditions: [] }] });
    let runs = 0;
    const fn = () => ++runs;
    for (const key of ['principalId', 'principalKind', 'roles', 'actionName', 'params']) {
      const sneaky = (() => ({
        [key]: key === 'roles' ? ['admin'] : key === 'params' ? {} : 'user',
      })) as unknown as () => Partial<ActionContext>;
      const err = await refusal(guarded(gate, 'tool.run', fn, { principal: BOT, context: sneaky })());
      expect(err.verdict.reason).toMatch(new RegExp(`may not set ${key}`));
    }
    // Left to the gate: a principal kind it does not know, params that are not plain JSON, unknown context fields.
    const cases = [
      { principal: { id: 'x', kind: 'robot' } as unknown as Principal },
      { principal: BOT, params: () => ({ when: new Date() }) },
      { principal: BOT, context: () => ({ sesionId: 's1' }) as Partial<ActionContext> },
    ];
    for (const opts of cases) expect((await refusal(guarded(gate, 'tool.run', fn, opts)())).code).toBe('INVALID_CONTEXT');
    expect(runs).toBe(0);
  });

  it('records the verdict of every guarded call the gate judged', async () => {
    const events: GateEvent[] = [];
    const gate = gateOf(REFUNDS, { audit: { append: async (e) => void events.push(e) } });
    const { issue } = refunds();
    const refund = guarded(gate, 'issue_refund', issue, { principal: BOT, params: (_o, amount) => ({ amount }) });
    await refund('ORD-1', 10);
    await refund('ORD-2', 10_000).catch(() => undefined);
    expect(events.map((e) => e.type === 'verdict' && [e.action, e.verdict])).toEqual([
      ['issue_refund', 'permit'],
      ['issue_refund', 'refuse'],
    ]);
  });

  it('refuses to wrap without an action, a function or a principal', () => {
    const gate = gateOf({ policies: [] });
    const fn = () => 1;
    expect(() => guarded(gate, '', fn, { principal: BOT })).toThrow(TypeError);
    expect(() => guarded(gate, 'a', 'nope' as unknown as () => number, { principal: BOT })).toThrow(TypeError);
    expect(() => guarded(gate, 'a', fn, undefined as unknown as { principal: Principal })).toThrow(TypeError);
    expect(() => guarded(gate, 'a', fn, {} as { principal: Principal })).toThrow(TypeError);
    expect(() => guarded(gate, 'a', fn, { principal: BOT, params: {} as unknown as () => Record<string, unknown> })).toThrow(TypeError);
  });

  it('keeps parameter and result types', () => {
    const gate = gateOf({ policies: [] });
    const asyncFn = guarded(gate, 'a', async (id: string, n: number) => ({ id, n }), { principal: BOT, params: (id, n) => ({ id, n }) });
    expectTypeOf(asyncFn).parameters.toEqualTypeOf<[string, number]>();
    expectTypeOf(asyncFn).returns.toEqualTypeOf<Promise<{ id: string; n: number }>>();
    const syncFn = guarded(gate, 'b', (flag: boolean): string => String(flag), {
      principal: (flag) => ({ id: String(flag), kind: 'user' }),
    });
    expectTypeOf(syncFn).parameters.toEqualTypeOf<[boolean]>();
    expectTypeOf(syncFn).returns.toEqualTypeOf<Promise<string>>();
    // The option functions see the wrapped function's parameters.
    guarded(gate, 'c', (order: { amount: number }) => order.amount, {
      principal: BOT,
      // @ts-expect-error: params receives an order, which has no `total`
      params: (order) => ({ total: order.total }),
    });
    // @ts-expect-error: context may not set the action
    guarded(gate, 'd', () => 1, { principal: BOT, context: () => ({ actionName: 'other' }) });
  });
});
