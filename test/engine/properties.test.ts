import fc from 'fast-check';
import { stringify as toToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { Gate, canonicalJson, hashArgs, type ActionContext, type Verdict } from '../../src/engine/index.ts';
import { compileGlob } from '../../src/engine/glob.ts';
import { T0 } from './helpers.ts';

// ---------------------------------------------------------------------------------------------
// Generators: small vocabularies, so random policies and random calls actually meet.

const KINDS = ['user', 'agent', 'service', 'scheduler', 'external'] as const;
const ACTIONS = ['refund.full', 'refund.partial', 'refunds', 'ticket.read', 'fs.write', 'fs.read'];
const half = fc.integer({ min: -20, max: 400 }).map((n) => n / 2);

const leaf: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.subarray([...KINDS], { minLength: 1 }).map((k) => ({ identity_kind: k.length === 1 ? k[0] : k })),
  fc.constantFrom('a', 'b', 'c').map((r) => ({ identity_role: r })),
  fc.constantFrom('agent-*', '*-1', 'user-2', 'svc-*').map((g) => ({ identity_id: g })),
  fc.constantFrom('refund.*', 'refund.full', 'ticket.read', '*', 'fs.*', '*.read').map((g) => ({ action: g })),
  fc.constantFrom('orders/*', 'orders/1').map((g) => ({ resource: g })),
  fc.record({ field: fc.constantFrom('amount', '/order/amount'), max: half }).map((v) => ({ param_max: v })),
  fc.record({ field: fc.constantFrom('amount', '/order/amount'), min: half }).map((v) => ({ param_min: v })),
  fc
    .subarray(['IN', 'US', 1, true] as (string | number | boolean)[], { minLength: 1 })
    .map((values) => ({ param_in: { field: 'country', values } })),
  fc.subarray(['IN', 'US'], { minLength: 1 }).map((values) => ({ param_not_in: { field: 'country', values } })),
  fc.constant({ param_glob: { field: 'to', pattern: '*@example.com' } }),
  fc.integer({ min: 0, max: 20 }).map((max) => ({ param_max_length: { field: 'to', max } })),
  fc.constant({ path_within: { field: 'path', roots: ['/srv'] } }),
  fc.constant({ url_host_in: { field: 'url', hosts: ['*.example.com', 'example.com'] } }),
  fc.constant({ ip_in: { cidrs: ['10.0.0.0/8'] } }),
  fc.constant({ country_in: { codes: ['IN'] } }),
  fc.constantFrom('09:00-17:00', '22:00-06:00 Asia/Kolkata').map((w) => ({ time_window: w })),
);

const stateless: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  { weight: 6, arbitrary: leaf },
  { weight: 1, arbitrary: leaf.map((c) => ({ not: c })) },
  { weight: 1, arbitrary: fc.array(leaf, { minLength: 1, maxLength: 3 }).map((cs) => ({ any_of: cs })) },
);

const limit: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc
    .record({
      max: fc.integer({ min: 1, max: 3 }),
      window: fc.constant('1m'),
      per: fc.constantFrom('principal+action', 'principal', 'global'),
    })
    .map((v) => ({ rate_limit: v })),
  fc.record({ field: fc.constant('amount'), max: fc.integer({ min: 1, max: 200 }), window: fc.constant('1d') }).map((v) => ({ budget: v })),
);

interface Policy {
  name: string;
  effect: 'permit' | 'refuse';
  priority?: number;
  conditions: Record<string, unknown>[];
}

function policyArb(withLimits: boolean, effect?: 'permit' | 'refuse'): fc.Arbitrary<Omit<Policy, 'name'>> {
  return fc
    .record({
      effect: effect ? fc.constant(effect) : fc.constantFrom<'permit' | 'refuse'>('permit', 'permit', 'refuse'),
      priority: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
      conditions: fc.array(stateless, { maxLength: 3 }),
      limits: withLimits ? fc.array(limit, { maxLength: 1 }) : fc.constant([]),
    })
    .map(({ effect: e, priority, conditions, limits }) => {
      const p: Omit<Policy, 'name'> = { effect: e, conditions: e === 'permit' ? [...conditions, ...limits] : conditions };
      if (priority !== undefined) p.priority = priority;
      return p;
    });
}

const named = (ps: Omit<Policy, 'name'>[], prefix = 'p'): Policy[] => ps.map((p, i) => ({ name: `${prefix}${i}`, ...p }));

function setArb(withLimits: boolean) {
  return fc.record({
    combining: fc.constantFrom('deny-overrides', 'first-match'),
    policies: fc.array(policyArb(withLimits), { maxLength: 6 }).map((ps) => named(ps)),
  });
}

const contextArb: fc.Arbitrary<ActionContext> = fc.record(
  {
    principalId: fc.constantFrom('agent-1', 'user-2', 'svc-3'),
    principalKind: fc.constantFrom(...KINDS),
    roles: fc.subarray(['a', 'b', 'c']),
    actionName: fc.constantFrom(...ACTIONS),
    resource: fc.constantFrom('orders/1', 'orders/2', 'invoices/1'),
    params: fc.record(
      {
        amount: fc.oneof(half, fc.constant('50'), fc.constant(null)),
        order: fc.record({ amount: half }),
        country: fc.constantFrom('IN', 'US', 'in', 1, true),
        to: fc.constantFrom('ann@example.com', 'bob@evil.net', 'x'),
        path: fc.constantFrom('/srv/a', '/srv/../etc', '/srvx', '/etc/passwd'),
        url: fc.constantFrom('https://example.com/', 'https://a.example.com/x', 'https://example.com@evil.net/', 'https://evil.net/'),
      },
      { requiredKeys: [] },
    ),
    ip: fc.constantFrom('10.1.2.3', '::ffff:10.9.9.9', '192.0.2.1'),
    geo: fc.constantFrom({ lat: 19, lon: 72.8, country: 'IN' }, { lat: 40.7, lon: -74, country: 'US' }),
  },
  { requiredKeys: ['principalId', 'principalKind', 'actionName'] },
) as fc.Arbitrary<ActionContext>;

const timeArb = fc.constantFrom(T0, T0 + 8 * 3_600_000, T0 + 14 * 3_600_000, T0 - 11 * 3_600_000);

/** What two verdicts must agree on. */
function summary(v: Verdict): string {
  if (v.kind === 'permit') return `permit:${v.policy}`;
  if (v.kind === 'refuse') return `${v.code}:${v.policy ?? ''}`;
  return 'invalidate';
}

const opts = (now: number) => ({ drift: false as const, clock: () => now });

// ---------------------------------------------------------------------------------------------

describe('property: the three loaders agree', () => {
  it('fromDict, fromJson and fromToml decide every call of a sequence alike (limits included)', async () => {
    await fc.assert(
      fc.asyncProperty(setArb(true), fc.array(contextArb, { minLength: 1, maxLength: 6 }), timeArb, async (set, calls, now) => {
        const dict = { combining: set.combining, policies: set.policies };
        const gates = [
          Gate.fromDict(dict, opts(now)),
          Gate.fromJson(JSON.stringify(dict), opts(now)),
          Gate.fromToml(toToml({ combining: set.combining, policy: set.policies }), opts(now)),
        ];
        for (const call of calls) {
          const [a, b, c] = await Promise.all(gates.map((g) => g.evaluate(call)));
          expect(summary(b as Verdict)).toBe(summary(a as Verdict));
          expect(summary(c as Verdict)).toBe(summary(a as Verdict));
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('property: monotonic combining', () => {
  it('adding a refuse policy never turns a Refuse into a Permit (either combining)', async () => {
    await fc.assert(
      fc.asyncProperty(
        setArb(false),
        policyArb(false, 'refuse'),
        fc.array(contextArb, { minLength: 1, maxLength: 5 }),
        timeArb,
        async (set, extra, calls, now) => {
          const base = Gate.fromDict(set, opts(now));
          const more = Gate.fromDict({ ...set, policies: [...set.policies, { name: 'extra', ...extra }] }, opts(now));
          for (const call of calls) {
            const before = await base.evaluate(call);
            const after = await more.evaluate(call);
            if (before.kind === 'refuse') expect(after.kind).toBe('refuse');
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('deny-overrides: adding a permit never overrides a matching refuse', async () => {
    await fc.assert(
      fc.asyncProperty(
        setArb(false),
        policyArb(false, 'permit'),
        fc.array(contextArb, { minLength: 1, maxLength: 5 }),
        timeArb,
        async (set, extra, calls, now) => {
          const doc = { combining: 'deny-overrides', policies: set.policies };
          const base = Gate.fromDict(doc, opts(now));
          const more = Gate.fromDict({ ...doc, policies: [{ name: 'extra', ...extra }, ...set.policies] }, opts(now));
          for (const call of calls) {
            const before = await base.evaluate(call);
            if (before.kind === 'refuse' && before.code === 'POLICY_DENIED') {
              expect(summary(await more.evaluate(call))).toBe(summary(before));
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('first-match: a permit added after every refuse never overrides a matching refuse', async () => {
    await fc.assert(
      fc.asyncProperty(
        setArb(false),
        policyArb(false, 'permit'),
        fc.array(contextArb, { minLength: 1, maxLength: 5 }),
        timeArb,
        async (set, extra, calls, now) => {
          const doc = { combining: 'first-match', policies: set.policies };
          const base = Gate.fromDict(doc, opts(now));
          const more = Gate.fromDict({ ...doc, policies: [...set.policies, { name: 'extra', ...extra, priority: 1_000 }] }, opts(now));
          for (const call of calls) {
            const before = await base.evaluate(call);
            if (before.kind === 'refuse' && before.code === 'POLICY_DENIED')
              expect(summary(await more.evaluate(call))).toBe(summary(before));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('an empty policy set refuses every call', async () => {
    const gate = Gate.fromDict({}, opts(T0));
    await fc.assert(
      fc.asyncProperty(contextArb, async (call) => {
        expect((await gate.evaluate(call)).kind).toBe('refuse');
      }),
      { numRuns: 100 },
    );
  });
});

describe('property: rate limits never over-admit under concurrent calls', () => {
  it('N concurrent calls admit exactly min(calls, max) per counter, whatever the scope', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom('principal+action', 'principal', 'global'),
        fc.array(fc.record({ principalId: fc.constantFrom('a', 'b', 'c'), actionName: fc.constantFrom('x', 'y') }), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.boolean(),
        async (max, per, calls, withSessions) => {
          const gate = Gate.fromDict(
            { policies: [{ name: 'p', effect: 'permit', conditions: [{ rate_limit: { max, window: '1h', per } }] }] },
            opts(T0),
          );
          const verdicts = await Promise.all(
            calls.map((c, i) =>
              gate.evaluate({
                principalKind: 'agent',
                ...c,
                ...(withSessions ? { sessionId: `${c.principalId}-s${i % 2}` } : {}),
              }),
            ),
          );
          const keyOf = (c: { principalId: string; actionName: string }) =>
            per === 'global' ? '' : per === 'principal' ? c.principalId : `${c.principalId}|${c.actionName}`;
          const asked = new Map<string, number>();
          const admitted = new Map<string, number>();
          calls.forEach((c, i) => {
            const k = keyOf(c);
            asked.set(k, (asked.get(k) ?? 0) + 1);
            if (verdicts[i]?.kind === 'permit') admitted.set(k, (admitted.get(k) ?? 0) + 1);
            else expect(verdicts[i]).toMatchObject({ code: 'RATE_LIMITED' });
          });
          for (const [k, n] of asked) expect(admitted.get(k) ?? 0).toBe(Math.min(n, max));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('concurrent budget charges never sum past the budget', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 30 }),
        async (max, amounts) => {
          const gate = Gate.fromDict(
            { policies: [{ name: 'p', effect: 'permit', conditions: [{ budget: { field: 'amount', max, window: '1d' } }] }] },
            opts(T0),
          );
          const verdicts = await Promise.all(
            amounts.map((amount) => gate.evaluate({ principalId: 'a', principalKind: 'agent', actionName: 'pay', params: { amount } })),
          );
          const spent = amounts.reduce((sum, amount, i) => sum + (verdicts[i]?.kind === 'permit' ? amount : 0), 0);
          expect(spent).toBeLessThanOrEqual(max);
          // Nothing that still fitted was refused: each refusal would have overflowed at its turn.
          let running = 0;
          amounts.forEach((amount, i) => {
            if (verdicts[i]?.kind === 'permit') running += amount;
            else expect(running + amount).toBeGreaterThan(max);
          });
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('property: globs', () => {
  const reference = (pattern: string) =>
    new RegExp(
      `^${pattern
        .split('*')
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
      's',
    );
  const patternArb = fc
    .string({ unit: fc.constantFrom('a', 'b', '.', '*'), maxLength: 8 })
    .filter((p) => p.length > 0 && !p.includes('**'));
  const valueArb = fc.string({ unit: fc.constantFrom('a', 'b', '.', 's'), maxLength: 10 });

  it('a glob matches exactly what the equivalent anchored regex matches', () => {
    fc.assert(
      fc.property(patternArb, valueArb, (pattern, value) => {
        expect(compileGlob(pattern)(value)).toBe(reference(pattern).test(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('a glob without * matches only itself; prefix.* matches prefix. plus anything and never the bare prefix', () => {
    fc.assert(
      fc.property(valueArb, valueArb, (a, b) => {
        expect(compileGlob(a.replaceAll('*', ''))(b)).toBe(a.replaceAll('*', '') === b);
        const prefix = a.replaceAll('*', '');
        expect(compileGlob(`${prefix}.*`)(`${prefix}.${b}`)).toBe(true);
        expect(compileGlob(`${prefix}.*`)(`${prefix}${b.startsWith('.') ? 'x' : b}`)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('property: canonical JSON', () => {
  const shuffleKeys = (v: unknown, seed: number): unknown => {
    if (Array.isArray(v)) return v.map((x) => shuffleKeys(x, seed + 1));
    if (v && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      const rotated = entries.length
        ? [...entries.slice(seed % entries.length), ...entries.slice(0, seed % entries.length)].reverse()
        : entries;
      return Object.fromEntries(rotated.map(([k, x]) => [k, shuffleKeys(x, seed + 1)]));
    }
    return v;
  };

  it('is valid JSON for the same value, and a fixed point', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = canonicalJson(v);
        expect(JSON.parse(c)).toEqual(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(JSON.parse(c))).toBe(c);
        expect(c).not.toMatch(/\n/);
      }),
      { numRuns: 500 },
    );
  });

  it('does not depend on key order, and neither does hashArgs', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(7), (v, seed) => {
        const shuffled = shuffleKeys(v, seed);
        expect(canonicalJson(shuffled)).toBe(canonicalJson(v));
        expect(hashArgs(shuffled)).toBe(hashArgs(v));
      }),
      { numRuns: 500 },
    );
  });

  it('different values hash differently (absent args, null and {} are all "no args")', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        fc.pre(canonicalJson(a ?? {}) !== canonicalJson(b ?? {}));
        expect(hashArgs(a)).not.toBe(hashArgs(b));
      }),
      { numRuns: 300 },
    );
  });

  it('matches the RFC 8785 example', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units and refuses what JSON cannot say', () => {
    expect(canonicalJson({ '\u20ac': 1, '\r': 2, '\ud83d\ude00': 3, a: 4, A: 5, ö: 6 })).toBe('{"\\r":2,"A":5,"a":4,"ö":6,"€":1,"😀":3}');
    expect(canonicalJson(-0)).toBe('0');
    expect(() => canonicalJson(Number.NaN)).toThrow();
    expect(() => canonicalJson({ a: Number.POSITIVE_INFINITY })).toThrow();
    expect(() => canonicalJson('\ud800')).toThrow();
    expect(() => canonicalJson(new Date(0))).toThrow();
    expect(() => canonicalJson(10n)).toThrow();
  });
});
