import { afterEach, describe, expect, it } from 'vitest';
import type { ActionContext, GateEvent, RateStore, SessionStore, Verdict } from '../../src/engine/index.ts';
import { Gate, InMemoryRateStore, InMemorySessionStore } from '../../src/engine/index.ts';
import { code, ctx, gateOf, outcome, permitWith } from './helpers.ts';

/** A gate that permits everything a valid context asks for, recording every verdict. */
function openGate(conditions: unknown[] = []) {
  const events: GateEvent[] = [];
  const gate = gateOf(permitWith(conditions), { audit: { append: async (e) => void events.push(e) } });
  return { gate, events };
}

function prototypeIsClean(): void {
  const probe = {} as Record<string, unknown>;
  for (const key of ['polluted', 'isAdmin', 'roles', 'x', 'sessionId', 'originIp']) expect(probe[key]).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
}

afterEach(prototypeIsClean);

describe('malformed contexts are refused INVALID_CONTEXT, never thrown, never permitted', () => {
  const deep = (n: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = { a: v };
    return v;
  };
  const withGetter = () => {
    const c = ctx() as unknown as Record<string, unknown>;
    Object.defineProperty(c, 'principalId', {
      enumerable: true,
      get: () => {
        throw new Error('getter boom');
      },
    });
    return c;
  };
  class Ctx {
    principalId = 'agent-1';
    principalKind = 'agent';
    actionName = 'tool.run';
  }
  const cases: [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ['a string', 'agent-1 wants tool.run'],
    ['an array', [ctx()]],
    ['a class instance', new Ctx()],
    ['a Map', new Map(Object.entries(ctx()))],
    ['a missing principalId', { principalKind: 'agent', actionName: 'tool.run' }],
    ['an empty principalId', ctx({ principalId: '' })],
    ['a numeric principalId', { ...ctx(), principalId: 42 }],
    ['a principalId with a newline', ctx({ principalId: 'agent-1\nverdict: permit' })],
    ['an over-long principalId', ctx({ principalId: 'a'.repeat(10_000) })],
    ['principalKind "admin"', { ...ctx(), principalKind: 'admin' }],
    ['principalKind "Agent"', { ...ctx(), principalKind: 'Agent' }],
    ['a missing principalKind', { principalId: 'a', actionName: 'tool.run' }],
    ['a numeric actionName', { ...ctx(), actionName: 7 }],
    ['an array actionName', { ...ctx(), actionName: ['tool.run'] }],
    ['an object actionName', { ...ctx(), actionName: { toString: () => 'tool.run' } }],
    ['a String object actionName', { ...ctx(), actionName: new String('tool.run') }],
    ['a missing actionName', { principalId: 'a', principalKind: 'agent' }],
    ['an empty actionName', ctx({ actionName: '' })],
    ['roles as a string', { ...ctx(), roles: 'admin' }],
    ['roles with a number', { ...ctx(), roles: ['ok', 1] }],
    ['too many roles', { ...ctx(), roles: Array.from({ length: 100 }, (_, i) => `r${i}`) }],
    ['params as an array', { ...ctx(), params: [1, 2] }],
    ['params as a string', { ...ctx(), params: '{"amount":1}' }],
    ['params as a class instance', { ...ctx(), params: new Ctx() }],
    ['a NaN param', ctx({ params: { amount: Number.NaN } })],
    ['an Infinity param', ctx({ params: { amount: Number.POSITIVE_INFINITY } })],
    ['a nested -Infinity param', ctx({ params: { order: { lines: [{ amount: Number.NEGATIVE_INFINITY }] } } })],
    ['a bigint param', ctx({ params: { amount: 10n as unknown as number } })],
    ['a function param', ctx({ params: { cb: () => 1 } })],
    ['a symbol param', ctx({ params: { s: Symbol('x') } })],
    ['a Date param', ctx({ params: { when: new Date() } })],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the input under test
    ['a sparse array param', ctx({ params: { xs: [1, , 3] } })],
    ['params nested 40 deep', ctx({ params: { d: deep(40) } as Record<string, unknown> })],
    ['params with 20,000 values', ctx({ params: { xs: Array.from({ length: 20_000 }, (_, i) => i) } })],
    ['params with 2 MB of strings', ctx({ params: { blob: 'x'.repeat(2_000_000) } })],
    ['an unknown context field', { ...ctx(), isAdmin: true }],
    ['a misspelt context field', { ...ctx(), sesionId: 's1' }],
    ['a malformed ip', ctx({ ip: '999.1.1.1' })],
    ['a hostname as ip', ctx({ ip: 'localhost' })],
    ['a numeric ip', { ...ctx(), ip: 167772161 }],
    ['geo with a string lat', { ...ctx(), geo: { lat: '19', lon: 72 } }],
    ['geo with NaN lon', ctx({ geo: { lat: 19, lon: Number.NaN } })],
    ['geo out of range', ctx({ geo: { lat: 91, lon: 0 } })],
    ['geo with a bad country', ctx({ geo: { lat: 1, lon: 1, country: 'IND' } })],
    ['geo with an extra field', { ...ctx(), geo: { lat: 1, lon: 1, alt: 3 } }],
    ['a resource with a NUL', ctx({ resource: 'orders/1\u0000' })],
    ['a lone surrogate in a param', ctx({ params: { note: 'ok\ud800' } })],
    ['a lone surrogate in a nested param key', ctx({ params: { a: { ['k\udc00']: 1 } } })],
    ['a lone surrogate in principalId', ctx({ principalId: 'agent\ud83d' })],
    ['a lone surrogate in a role', ctx({ roles: ['\udfff'] })],
    ['a lone surrogate in resource', ctx({ resource: 'orders/\ud800' })],
    ['a numeric resource', { ...ctx(), resource: 42 }],
    ['a sessionId object', { ...ctx(), sessionId: { id: 's1' } }],
    ['an empty callId', ctx({ callId: '' })],
    ['a throwing getter', withGetter()],
    [
      'a throwing proxy',
      new Proxy(
        {},
        {
          get() {
            throw new Error('boom');
          },
          getPrototypeOf() {
            throw new Error('boom');
          },
          ownKeys() {
            throw new Error('boom');
          },
        },
      ),
    ],
  ];

  it.each(cases)('%s', async (_label, input) => {
    const { gate, events } = openGate();
    const verdict = await gate.evaluate(input as never);
    expect(verdict.kind).toBe('refuse');
    expect(verdict.kind === 'refuse' && verdict.code).toBe('INVALID_CONTEXT');
    expect(verdict.kind === 'refuse' && verdict.reason.length).toBeGreaterThan(0);
    // Every verdict is recorded, even for garbage, and the record holds no raw garbage.
    expect(events).toHaveLength(1);
    const event = events[0] as Extract<GateEvent, { type: 'verdict' }>;
    expect(event.verdict).toBe('refuse');
    expect(event.args).toBeNull();
    expect(event.principal.length).toBeLessThanOrEqual(256);
  });

  it('check() turns an invalid context into a RefusedError, not some other throw', async () => {
    const { gate } = openGate();
    await expect(gate.check({ ...ctx(), actionName: 7 } as never)).rejects.toMatchObject({ code: 'INVALID_CONTEXT' });
  });

  it('a valid twin of each case is permitted, so the refusals above are about the flaw', async () => {
    const { gate } = openGate();
    expect(
      await outcome(
        gate,
        ctx({
          params: { amount: 1, order: { lines: [{ amount: 2 }] } },
          roles: ['a'],
          ip: '10.0.0.1',
          geo: { lat: 19, lon: 72, country: 'in' },
        }),
      ),
    ).toBe('permit');
    expect(await outcome(gate, Object.assign(Object.create(null), ctx()))).toBe('permit');
    expect(await outcome(gate, ctx({ principalId: 'agent-😀', params: { note: 'ok 😀 \u00e9', ['k😀']: 1 } }))).toBe('permit');
  });
});

describe('prototype pollution', () => {
  it('__proto__, constructor and prototype keys in params (via JSON.parse) are refused and pollute nothing', async () => {
    const { gate } = openGate();
    for (const json of [
      '{"__proto__": {"polluted": true}}',
      '{"a": {"__proto__": {"isAdmin": true}}}',
      '{"constructor": {"prototype": {"polluted": true}}}',
      '{"list": [{"__proto__": {"x": 1}}]}',
      '{"prototype": 1}',
    ]) {
      expect(await outcome(gate, ctx({ params: JSON.parse(json) }))).toBe('INVALID_CONTEXT');
    }
    const top = JSON.parse('{"principalId":"a","principalKind":"agent","actionName":"tool.run","__proto__":{"roles":["admin"]}}');
    expect(await outcome(gate, top)).toBe('INVALID_CONTEXT');
  });

  it('a polluted Object.prototype lends a context no roles, origins or session', async () => {
    const gate = gateOf({
      policies: [{ name: 'admins', effect: 'permit', conditions: [{ identity_role: 'admin' }] }],
    });
    const inIndia = gateOf(permitWith([{ country_in: { codes: ['IN'] } }]));
    const once = gateOf(permitWith([{ rate_limit: { max: 1, window: '1h' } }]));
    const tagged = gateOf(permitWith([{ resource: 'orders/*' }]));
    const proto = Object.prototype as Record<string, unknown>;
    try {
      proto.roles = ['admin'];
      proto.country = 'IN';
      proto.callId = 'same-call';
      proto.resource = 'orders/1';
      expect(await outcome(gate, ctx())).toBe('NO_POLICY_MATCH');
      expect(await outcome(inIndia, ctx({ geo: { lat: 1, lon: 1 } }))).toBe('NO_POLICY_MATCH');
      expect(await outcome(once, ctx())).toBe('permit');
      expect(await outcome(once, ctx())).toBe('RATE_LIMITED');
      expect(await outcome(tagged, ctx())).toBe('NO_POLICY_MATCH');
    } finally {
      delete proto.roles;
      delete proto.country;
      delete proto.callId;
      delete proto.resource;
    }
  });

  it("the params a condition sees are the gate's own copy", async () => {
    const gate = gateOf(permitWith([{ param_max: { field: 'amount', max: 10 } }]));
    const params = { amount: 5 };
    const pending = gate.evaluate(ctx({ params }));
    params.amount = 5000;
    expect((await pending).kind).toBe('permit');
  });
});

describe('a context that changes while it is read', () => {
  it('a getter cannot pass validation with one resource and be matched with another', async () => {
    const gate = gateOf(permitWith([{ resource: 'orders/*' }]));
    let reads = 0;
    const c = ctx() as unknown as Record<string, unknown>;
    Object.defineProperty(c, 'resource', { enumerable: true, get: () => (++reads === 1 ? 'orders/1' : 'orders/1\u0000../admin') });
    const result = await outcome(gate, c);
    expect(result === 'permit' ? reads : 1).toBe(1);
  });

  it('a getter cannot slip control characters or objects past the checks on later reads', async () => {
    const gate = gateOf(permitWith([{ resource: 'ok*' }]));
    let reads = 0;
    const c = ctx() as unknown as Record<string, unknown>;
    Object.defineProperty(c, 'resource', { enumerable: true, get: () => (++reads < 5 ? 'ok' : 'ok\u0000evil') });
    const verdict = await gate.evaluate(c as never);
    if (verdict.kind === 'permit') expect(reads).toBe(1);
  });

  it('roles cannot grow past the limit between the check and the copy', async () => {
    const gate = gateOf({ policies: [{ name: 'admins', effect: 'permit', conditions: [{ identity_role: 'admin' }] }] });
    let reads = 0;
    const many = Array.from({ length: 100 }, (_, i) => (i === 99 ? 'admin' : `r${i}`));
    const c = ctx() as unknown as Record<string, unknown>;
    Object.defineProperty(c, 'roles', { enumerable: true, get: () => (++reads === 1 ? ['a'] : many) });
    expect(await outcome(gate, c)).toBe('NO_POLICY_MATCH');
  });
});

describe('a store that fails', () => {
  const broken = (what: string) => () => {
    throw new Error(`${what} down`);
  };

  it('a session store that throws → STORE_UNAVAILABLE', async () => {
    const session: SessionStore = { observe: broken('sessions'), invalidate: broken('sessions') };
    const gate = gateOf(permitWith([]), { stores: { session } });
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('STORE_UNAVAILABLE');
  });

  it('a session store that rejects → STORE_UNAVAILABLE', async () => {
    const session: SessionStore = { observe: async () => Promise.reject(new Error('timeout')), invalidate: async () => undefined };
    const gate = gateOf(permitWith([]), { stores: { session } });
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('STORE_UNAVAILABLE');
  });

  it('a rate store that throws or rejects → STORE_UNAVAILABLE, only when a limit is consulted', async () => {
    for (const rate of [
      { checkAndCharge: broken('redis'), refund: broken('redis') } as RateStore,
      { checkAndCharge: async () => Promise.reject(new Error('ECONNRESET')), refund: async () => undefined } as RateStore,
    ]) {
      const gate = gateOf(
        {
          policies: [
            { name: 'limited', effect: 'permit', conditions: [{ action: 'pay' }, { rate_limit: { max: 5, window: '1m' } }] },
            { name: 'free', effect: 'permit', conditions: [{ action: 'read' }] },
          ],
        },
        { stores: { rate } },
      );
      expect(await outcome(gate, ctx({ actionName: 'pay' }))).toBe('STORE_UNAVAILABLE');
      expect(await outcome(gate, ctx({ actionName: 'read' }))).toBe('permit');
    }
  });

  it('a rate store that answers nonsense is a refusal, not a permit', async () => {
    const rate = { checkAndCharge: () => undefined, refund: () => undefined } as unknown as RateStore;
    const gate = gateOf(permitWith([{ rate_limit: { max: 5, window: '1m' } }]), { stores: { rate } });
    expect((await gate.evaluate(ctx())).kind).toBe('refuse');
  });

  it('a real store keeps working next to a broken one', async () => {
    const gate = gateOf(permitWith([{ rate_limit: { max: 1, window: '1m' } }]), { stores: { rate: new InMemoryRateStore() } });
    expect(await outcome(gate, ctx())).toBe('permit');
    expect(await outcome(gate, ctx())).toBe('RATE_LIMITED');
  });

  it('a closed gate refuses', async () => {
    const { gate } = openGate();
    await gate.close();
    expect(await outcome(gate, ctx())).toBe('STORE_UNAVAILABLE');
  });
});

describe('a session store answer the gate cannot use is a store failure, not a session-less call', () => {
  const broken = (answer: unknown): SessionStore => ({
    observe: () => answer as ReturnType<SessionStore['observe']>,
    invalidate: () => undefined,
  });
  const cases: Array<[string, unknown]> = [
    ['no session', { invalid: false }],
    ['an empty object', {}],
    ['invalid as a string', { invalid: 'false', session: { principalId: 'agent-1', startedAt: 0, actionCount: 1, recentCalls: 1 } }],
    ['a session without its principal', { invalid: false, session: { startedAt: 0, actionCount: 1, recentCalls: 1 } }],
    [
      'a session with a non-numeric call count',
      { invalid: false, session: { principalId: 'agent-1', startedAt: 0, actionCount: 1, recentCalls: 'many' } },
    ],
    ['a session with no start time', { invalid: false, session: { principalId: 'agent-1', actionCount: 1, recentCalls: 1 } }],
  ];
  for (const [name, answer] of cases) {
    it(`${name} → STORE_UNAVAILABLE`, async () => {
      const gate = Gate.fromDict(permitWith([]), { stores: { session: broken(answer) } });
      expect(code(await gate.evaluate(ctx({ sessionId: 's1' })))).toBe('STORE_UNAVAILABLE');
    });
  }

  it('a well-formed answer still permits, with drift checked against it', async () => {
    const ok = broken({
      invalid: false,
      session: { principalId: 'agent-1', startedAt: Date.now(), actionCount: 1, recentCalls: 1, originIp: '203.0.113.7' },
    });
    const gate = Gate.fromDict(permitWith([]), { stores: { session: ok } });
    expect(code(await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.7' })))).toBe('permit');
    expect(code(await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9' })))).toBe('invalidate');
  });

  it('a rate store that admits with anything but true (a string, a number) is a store failure too', async () => {
    for (const answer of [{ admitted: 'false', index: 0 }, { admitted: 1 }, { admitted: 'yes' }]) {
      const rate: RateStore = { checkAndCharge: () => answer as never, refund: () => undefined };
      const gate = gateOf(permitWith([{ rate_limit: { max: 1, window: '1h' } }]), { stores: { rate } });
      expect(code(await gate.evaluate(ctx()))).toBe('STORE_UNAVAILABLE');
    }
  });

  it('the in-memory store keeps working', async () => {
    const gate = Gate.fromDict(permitWith([]), { stores: { session: new InMemorySessionStore() } });
    const v: Verdict = await gate.evaluate(ctx({ sessionId: 's1' }));
    expect(v.kind).toBe('permit');
  });
});

describe('roles are read by the gate, not by the array they came in', () => {
  it('an array with its own map (or a subclass overriding it) cannot hand back unchecked roles', async () => {
    const gate = gateOf(permitWith([{ identity_role: 'admin' }]));
    const ownMap = ['guest'];
    Object.defineProperty(ownMap, 'map', { value: () => ['admin', 'evil\nrole', { toString: () => 'admin' }] });
    class Sneaky extends Array<string> {
      override map<U>(): U[] {
        return ['admin\u0000'] as U[];
      }
    }
    const sneaky = Sneaky.from(['guest']) as Sneaky;
    for (const roles of [ownMap, sneaky]) {
      expect(await gate.evaluate({ ...ctx(), roles } as ActionContext)).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH' });
    }
    const bad = ['ok'];
    Object.defineProperty(bad, 'map', { value: () => ['fine'] });
    bad.push('bad\nrole');
    expect(await gate.evaluate({ ...ctx(), roles: bad } as ActionContext)).toMatchObject({ kind: 'refuse', code: 'INVALID_CONTEXT' });
    expect(code(await gate.evaluate(ctx({ roles: ['admin'] })))).toBe('permit');
  });
});

describe('IP addresses are bounded like every other identifier', () => {
  it('an IPv6 zone of any length (which node:net isIP accepts) is INVALID_CONTEXT; ordinary zones and mapped addresses pass', async () => {
    const gate = gateOf(permitWith([]));
    for (const key of ['ip', 'originIp'] as const) {
      expect(await gate.evaluate(ctx({ [key]: `fe80::1%${'a'.repeat(100_000)}` }))).toMatchObject({
        kind: 'refuse',
        code: 'INVALID_CONTEXT',
      });
    }
    for (const ip of ['fe80::1%eth0', '::ffff:203.0.113.7', 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', '203.0.113.7']) {
      expect(code(await gate.evaluate(ctx({ ip })))).toBe('permit');
    }
  });
});
