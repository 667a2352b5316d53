import fc from 'fast-check';
import { stringify as toToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { Gate, PolicyError, type ActionContext } from '../../src/engine/index.ts';

const VALID = {
  combining: 'first-match',
  policies: [
    {
      name: 'refunds',
      effect: 'permit',
      priority: 5,
      conditions: [
        { identity_kind: ['agent', 'user'] },
        { action: 'refund.*' },
        { param_max: { field: '/order/amount', max: 500 } },
        { any_of: [{ identity_role: 'refunds' }, { not: { country_in: { codes: ['KP'] } } }] },
        { rate_limit: { max: 5, window: '1h', per: 'principal' } },
        { budget: { field: 'amount', max: 100, window: '1d' } },
        { time_window: '09:00-17:00 Asia/Kolkata' },
        { url_host_in: { field: 'u', hosts: ['*.example.com'] } },
        { path_within: { field: 'p', roots: ['/srv'] } },
        { ip_in: { cidrs: ['10.0.0.0/8'] } },
        { session_age_max: '1h' },
      ],
    },
    { name: 'deny', effect: 'refuse', conditions: [{ param_in: { field: 'x', values: ['a', 1, true] } }] },
  ],
  invariants: [{ name: 'cap', param_max: { field: 'amount', max: 10 } }],
};

/** Replaces the value at one path of `doc` with `value`. */
function mutate(doc: unknown, pick: number, value: unknown): unknown {
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    paths.push(path);
    if (Array.isArray(v))
      v.forEach((x, i) => {
        walk(x, [...path, i]);
      });
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(doc, []);
  const path = paths[pick % paths.length] as (string | number)[];
  if (path.length === 0) return value;
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let at = copy;
  for (const step of path.slice(0, -1)) at = at[step] as Record<string | number, unknown>;
  at[path[path.length - 1] as string | number] = value;
  return copy;
}

function loadsOrPolicyError(load: () => unknown): void {
  try {
    load();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).message.length).toBeGreaterThan(0);
  }
}

describe('fuzz: loading', () => {
  it('the valid fixture loads in all three formats', () => {
    expect(Gate.fromDict(VALID).policyCount).toBe(2);
    expect(Gate.fromJson(JSON.stringify(VALID)).policyCount).toBe(2);
    expect(
      Gate.fromToml(toToml({ ...VALID, policy: VALID.policies, policies: undefined, invariant: VALID.invariants, invariants: undefined }))
        .policyCount,
    ).toBe(2);
  });

  it('any one value of a valid document replaced by anything: loads or throws PolicyError, nothing else', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.anything({
          withNullPrototype: true,
          withMap: true,
          withSet: true,
          withDate: true,
          withTypedArray: true,
          withSparseArray: true,
          withBigInt: true,
        }),
        (pick, value) => {
          loadsOrPolicyError(() => Gate.fromDict(mutate(VALID, pick, value) as object));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('any JSON document: loads or throws PolicyError', () => {
    fc.assert(
      fc.property(fc.nat(), fc.jsonValue(), (pick, value) => {
        loadsOrPolicyError(() => Gate.fromJson(JSON.stringify(mutate(VALID, pick, value))));
      }),
      { numRuns: 1000 },
    );
  });

  it('any text as JSON or TOML: loads or throws PolicyError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        loadsOrPolicyError(() => Gate.fromJson(text));
        loadsOrPolicyError(() => Gate.fromToml(text));
        loadsOrPolicyError(() => Gate.fromDict({}).reload(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('truncated and spliced policy files: loads or throws PolicyError', () => {
    const json = JSON.stringify(VALID);
    const toml = toToml({ combining: VALID.combining, policy: VALID.policies });
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.string({ maxLength: 5 }), (a, b, junk) => {
        for (const text of [json, toml]) {
          const i = a % text.length;
          const j = b % text.length;
          loadsOrPolicyError(() => Gate.fromJson(text.slice(0, i) + junk + text.slice(j)));
          loadsOrPolicyError(() => Gate.fromToml(text.slice(0, i) + junk + text.slice(j)));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('fuzz: evaluating', () => {
  const gate = Gate.fromDict({ policies: [{ name: 'all', effect: 'permit', conditions: [] }] }, { drift: false });
  const strict = Gate.fromDict(VALID, { drift: false });
  const valid: ActionContext = { principalId: 'a', principalKind: 'agent', actionName: 'refund.full' };

  it('anything as a context: a verdict, never a throw; a permit only for a well-formed context', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.anything({ withNullPrototype: true, withMap: true, withDate: true, withBigInt: true, withSparseArray: true }),
        async (input) => {
          const v = await gate.evaluate(input as ActionContext);
          expect(['permit', 'refuse']).toContain(v.kind);
          if (v.kind === 'permit') expect(input).toMatchObject({ principalId: expect.any(String), actionName: expect.any(String) });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a valid context with any one field replaced by anything: a verdict, never a throw', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'principalId',
          'principalKind',
          'roles',
          'actionName',
          'resource',
          'params',
          'sessionId',
          'ip',
          'device',
          'geo',
          'originIp',
          'originGeo',
          'callId',
          'audience',
          'extra',
        ),
        fc.anything({ withBigInt: true, withDate: true, withSparseArray: true }),
        async (key, value) => {
          for (const g of [gate, strict]) {
            const v = await g.evaluate({ ...valid, [key]: value } as ActionContext);
            expect(['permit', 'refuse', 'invalidate']).toContain(v.kind);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('random params against a policy with every condition: a verdict, never a throw', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.constantFrom('amount', 'order', 'u', 'p', 'x', 'y'), fc.jsonValue({ maxDepth: 3 })),
        async (params) => {
          const v = await strict.evaluate({ ...valid, params: params as Record<string, unknown> });
          expect(['permit', 'refuse']).toContain(v.kind);
        },
      ),
      { numRuns: 500 },
    );
  });
});

it('fuzzing left Object.prototype clean', () => {
  expect(Object.keys(Object.prototype)).toEqual([]);
});
