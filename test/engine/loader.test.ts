import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gate, PolicyError, parsePolicyDocument, parsePolicyText } from '../../src/engine/index.ts';
import { ctx, gateOf, outcome } from './helpers.ts';

const KAVACH_TOML = `
# A Kavach policy file, as Kavach users write them.
[[policy]]
name = "agents_small_refunds"
description = "Agents may refund up to 500"
effect = "permit"
priority = 10
conditions = [
  { identity_kind = "agent" },
  { action = "refund.*" },
  { param_max = { field = "amount", max = 500 } },
]

[[policy]]
name = "support_read"
effect = "permit"
conditions = [
  { identity_role = "support" },
  { action = ["ticket.read", "ticket.list"] },
]

[[policy]]
name = "no_external_refunds"
effect = "refuse"
priority = 1
conditions = [
  { identity_kind = "external" },
  { action = "refund.*" },
]
`;

const KAVACH_JSON = JSON.stringify({
  policies: [
    {
      name: 'agents_small_refunds',
      description: 'Agents may refund up to 500',
      effect: 'permit',
      priority: 10,
      conditions: [{ identity_kind: 'agent' }, { action: 'refund.*' }, { param_max: { field: 'amount', max: 500 } }],
    },
    { name: 'support_read', effect: 'permit', conditions: [{ identity_role: 'support' }, { action: ['ticket.read', 'ticket.list'] }] },
    { name: 'no_external_refunds', effect: 'refuse', priority: 1, conditions: [{ identity_kind: 'external' }, { action: 'refund.*' }] },
  ],
});

/** Expects `load` to throw a PolicyError whose path is exactly `path` (and message mentions `says`). */
function expectPolicyError(load: () => unknown, path: string, says?: RegExp): PolicyError {
  let caught: unknown;
  try {
    load();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a PolicyError at ${path}`).toBeInstanceOf(PolicyError);
  const err = caught as PolicyError;
  expect(err.path).toBe(path);
  expect(err.code).toBe('POLICY_INVALID');
  expect(err.message.startsWith(path === '' ? '' : `${path}: `)).toBe(true);
  if (says) expect(err.message).toMatch(says);
  return err;
}

const policyWith = (condition: unknown, effect = 'permit') => ({ policies: [{ name: 'p', effect, conditions: [condition] }] });

describe('Kavach policy files load unchanged', () => {
  it('loads a Kavach TOML file with [[policy]] tables and decides on it', async () => {
    const gate = Gate.fromToml(KAVACH_TOML, { drift: false });
    expect(gate.policyCount).toBe(3);
    expect(await outcome(gate, ctx({ actionName: 'refund.full', params: { amount: 120 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'refund.full', params: { amount: 501 } }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, ctx({ actionName: 'refund.full', principalKind: 'external', params: { amount: 1 } }))).toBe('POLICY_DENIED');
    expect(await outcome(gate, ctx({ actionName: 'ticket.list', principalKind: 'user', roles: ['support'] }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'ticket.delete', principalKind: 'user', roles: ['support'] }))).toBe('NO_POLICY_MATCH');
  });

  it('loads a Kavach JSON file with a "policies" array to the same set as the TOML', () => {
    expect(parsePolicyText(KAVACH_JSON, 'json')).toEqual(parsePolicyText(KAVACH_TOML, 'toml'));
  });

  it('fromFile picks the format by extension and refuses other extensions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kavach-loader-'));
    writeFileSync(join(dir, 'p.toml'), KAVACH_TOML);
    writeFileSync(join(dir, 'p.json'), KAVACH_JSON);
    writeFileSync(join(dir, 'p.yaml'), KAVACH_JSON);
    expect((await Gate.fromFile(join(dir, 'p.toml'))).policyCount).toBe(3);
    expect((await Gate.fromFile(join(dir, 'p.json'))).policyCount).toBe(3);
    await expect(Gate.fromFile(join(dir, 'p.yaml'))).rejects.toBeInstanceOf(PolicyError);
  });

  it('defaults priority to 100 and combining to deny-overrides', () => {
    const spec = parsePolicyDocument({ policy: [{ name: 'a', effect: 'permit', conditions: [] }] });
    expect(spec.combining).toBe('deny-overrides');
    expect(spec.policies[0]?.priority).toBe(100);
  });
});

describe('combining', () => {
  const doc = (combining: string | undefined, refusePriority: number, permitPriority: number) => ({
    ...(combining ? { combining } : {}),
    policies: [
      { name: 'deny_refunds', effect: 'refuse', priority: refusePriority, conditions: [{ action: 'refund.*' }] },
      { name: 'allow_refunds', effect: 'permit', priority: permitPriority, conditions: [{ action: 'refund.*' }] },
    ],
  });
  const call = ctx({ actionName: 'refund.full' });

  it('first-match: the lowest priority number that fully matches wins', async () => {
    expect(await outcome(gateOf(doc('first-match', 20, 10)), call)).toBe('permit');
    expect(await outcome(gateOf(doc('first-match', 10, 20)), call)).toBe('POLICY_DENIED');
  });

  it('first-match: equal priorities keep file order', async () => {
    expect(await outcome(gateOf(doc('first-match', 10, 10)), call)).toBe('POLICY_DENIED');
  });

  it('first-match: a higher-priority policy that does not fully match is skipped', async () => {
    const gate = gateOf({
      combining: 'first-match',
      policies: [
        { name: 'small', effect: 'permit', priority: 1, conditions: [{ param_max: { field: 'amount', max: 10 } }] },
        { name: 'deny', effect: 'refuse', priority: 2, conditions: [] },
      ],
    });
    expect(await outcome(gate, ctx({ params: { amount: 5 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 50 } }))).toBe('POLICY_DENIED');
  });

  it('deny-overrides ignores priority: any matching refuse wins', async () => {
    expect(await outcome(gateOf(doc(undefined, 1000, 0)), call)).toBe('POLICY_DENIED');
    expect(await outcome(gateOf(doc('deny-overrides', 1000, 0)), call)).toBe('POLICY_DENIED');
  });

  it('combining written below a [[policy]] table says where it belongs', () => {
    expectPolicyError(
      () => Gate.fromToml('[[policy]]\nname = "a"\neffect = "permit"\nconditions = []\ncombining = "first-match"\n'),
      'policy[0].combining',
      /above the first \[\[policy\]\]/,
    );
  });

  it('refuses an unknown combining algorithm', () => {
    expectPolicyError(() => parsePolicyDocument({ combining: 'permit-overrides', policies: [] }), 'combining', /deny-overrides/);
  });
});

describe('bad policy input names the path of the bad field', () => {
  it('param_max.feild in the third TOML policy', () => {
    const toml = `${KAVACH_TOML}\n`.replace(
      '{ param_max = { field = "amount", max = 500 } }',
      '{ param_max = { feild = "amount", max = 500 } }',
    );
    // Put the typo in policy[2] by loading three copies with the typo last.
    const three = `
[[policy]]
name = "a"
effect = "permit"
conditions = []
[[policy]]
name = "b"
effect = "permit"
conditions = []
[[policy]]
name = "c"
effect = "permit"
conditions = [{ param_max = { feild = "amount", max = 500 } }]
`;
    expectPolicyError(() => Gate.fromToml(toml), 'policy[0].conditions[2].param_max.feild', /unknown key/);
    const err = expectPolicyError(() => Gate.fromToml(three), 'policy[2].conditions[0].param_max.feild');
    expect(err.message).toMatch(/^policy\[2\]\.conditions\[0\]\.param_max\.feild: unknown key/);
  });

  it.each([
    [
      'idnetity_kind (a misspelt condition)',
      policyWith({ idnetity_kind: 'agent' }),
      'policies[0].conditions[0].idnetity_kind',
      /identity_kind/,
    ],
    [
      'param_mac (a misspelt condition)',
      policyWith({ param_mac: { field: 'a', max: 1 } }),
      'policies[0].conditions[0].param_mac',
      /param_max/,
    ],
    ['polciies (a misspelt top-level key)', { polciies: [] }, 'polciies', /unknown key.*policies/],
    [
      'priority = "high"',
      { policies: [{ name: 'p', effect: 'permit', priority: 'high', conditions: [] }] },
      'policies[0].priority',
      /number/,
    ],
    ['values = "IN"', policyWith({ param_in: { field: 'country', values: 'IN' } }), 'policies[0].conditions[0].param_in.values', /array/],
    ['effect = "allow"', { policies: [{ name: 'p', effect: 'allow', conditions: [] }] }, 'policies[0].effect', /permit/],
    [
      'identity_kind = "robot"',
      policyWith({ identity_kind: 'robot' }),
      'policies[0].conditions[0].identity_kind',
      /must be one of "user", "agent"/,
    ],
    [
      'identity_kind = ["agent", "robot"]',
      policyWith({ identity_kind: ['agent', 'robot'] }),
      'policies[0].conditions[0].identity_kind[1]',
      /must be one of/,
    ],
    ['action = 5', policyWith({ action: 5 }), 'policies[0].conditions[0].action', /expected string or array/],
    [
      'session_age_max = true',
      policyWith({ session_age_max: true }),
      'policies[0].conditions[0].session_age_max',
      /expected string or number/,
    ],
    [
      'per = "user"',
      policyWith({ rate_limit: { max: 1, window: '1m', per: 'user' } }),
      'policies[0].conditions[0].rate_limit.per',
      /principal/,
    ],
    [
      'url schemes = ["ftp"]',
      policyWith({ url_host_in: { field: 'u', hosts: ['a.com'], schemes: ['ftp'] } }),
      'policies[0].conditions[0].url_host_in.schemes[0]',
      undefined,
    ],
    ['missing conditions', { policies: [{ name: 'p', effect: 'permit' }] }, 'policies[0].conditions', undefined],
    ['missing name', { policies: [{ effect: 'permit', conditions: [] }] }, 'policies[0].name', undefined],
    ['empty name', { policies: [{ name: '', effect: 'permit', conditions: [] }] }, 'policies[0].name', /empty/],
    ['a condition with two keys', policyWith({ action: 'a', resource: 'b' }), 'policies[0].conditions[0]', /exactly one key/],
    ['a condition with no key', policyWith({}), 'policies[0].conditions[0]', /exactly one key/],
    ['a condition that is a string', policyWith('action'), 'policies[0].conditions[0]', /table/],
    ['a policy that is an array', { policies: [[]] }, 'policies[0]', /table/],
    ['both policy and policies', { policy: [], policies: [] }, 'policies', /either/],
    [
      'duplicate policy names',
      {
        policies: [
          { name: 'a', effect: 'permit', conditions: [] },
          { name: 'a', effect: 'refuse', conditions: [] },
        ],
      },
      'policies[1].name',
      /duplicate/,
    ],
    [
      'param_max.max = NaN',
      policyWith({ param_max: { field: 'a', max: Number.NaN } }),
      'policies[0].conditions[0].param_max.max',
      /number/,
    ],
    [
      'param_min.min = Infinity',
      policyWith({ param_min: { field: 'a', min: Number.POSITIVE_INFINITY } }),
      'policies[0].conditions[0].param_min.min',
      /number/,
    ],
    [
      'budget.max = -Infinity',
      policyWith({ budget: { field: 'a', max: Number.NEGATIVE_INFINITY, window: '1d' } }),
      'policies[0].conditions[0].budget.max',
      undefined,
    ],
    ['rate_limit.max = 0', policyWith({ rate_limit: { max: 0, window: '1m' } }), 'policies[0].conditions[0].rate_limit.max', undefined],
    ['rate_limit.max = 1.5', policyWith({ rate_limit: { max: 1.5, window: '1m' } }), 'policies[0].conditions[0].rate_limit.max', undefined],
    ['budget.max = 0', policyWith({ budget: { field: 'a', max: 0, window: '1d' } }), 'policies[0].conditions[0].budget.max', undefined],
    ['priority = -1', { policies: [{ name: 'p', effect: 'permit', priority: -1, conditions: [] }] }, 'policies[0].priority', undefined],
    ['priority = 1.5', { policies: [{ name: 'p', effect: 'permit', priority: 1.5, conditions: [] }] }, 'policies[0].priority', undefined],
    ['empty param_in values', policyWith({ param_in: { field: 'a', values: [] } }), 'policies[0].conditions[0].param_in.values', /empty/],
    [
      'param_in values holding an object',
      policyWith({ param_in: { field: 'a', values: [{ x: 1 }] } }),
      'policies[0].conditions[0].param_in.values[0]',
      undefined,
    ],
    ['empty field', policyWith({ param_max: { field: '', max: 1 } }), 'policies[0].conditions[0].param_max.field', /empty/],
    [
      'a bad JSON Pointer escape',
      policyWith({ param_max: { field: '/a~2b', max: 1 } }),
      'policies[0].conditions[0].param_max.field',
      /~0 and ~1/,
    ],
    [
      'relative path_within root',
      policyWith({ path_within: { field: 'p', roots: ['srv/data'] } }),
      'policies[0].conditions[0].path_within.roots[0]',
      /absolute/,
    ],
    [
      'path_within root with ..',
      policyWith({ path_within: { field: 'p', roots: ['/srv/../etc'] } }),
      'policies[0].conditions[0].path_within.roots[0]',
      /clean/,
    ],
    [
      'upper-case host pattern',
      policyWith({ url_host_in: { field: 'u', hosts: ['Example.com'] } }),
      'policies[0].conditions[0].url_host_in.hosts[0]',
      /host/,
    ],
    [
      'host pattern with a path',
      policyWith({ url_host_in: { field: 'u', hosts: ['example.com/x'] } }),
      'policies[0].conditions[0].url_host_in.hosts[0]',
      /host/,
    ],
    [
      'bare * host pattern',
      policyWith({ url_host_in: { field: 'u', hosts: ['*'] } }),
      'policies[0].conditions[0].url_host_in.hosts[0]',
      /host/,
    ],
    ['a CIDR with a bad prefix', policyWith({ ip_in: { cidrs: ['10.0.0.0/33'] } }), 'policies[0].conditions[0].ip_in.cidrs[0]', /prefix/],
    ['a CIDR that is a name', policyWith({ ip_in: { cidrs: ['localhost'] } }), 'policies[0].conditions[0].ip_in.cidrs[0]', /CIDR/],
    [
      'a lower-case country code',
      policyWith({ country_in: { codes: ['in'] } }),
      'policies[0].conditions[0].country_in.codes[0]',
      /upper-case/,
    ],
    [
      'a three-letter country code',
      policyWith({ country_in: { codes: ['IND'] } }),
      'policies[0].conditions[0].country_in.codes[0]',
      undefined,
    ],
    [
      'an unknown invariant rule',
      { policies: [], invariant: [{ name: 'i', param_mux: { field: 'a', max: 1 } }] },
      'invariant[0].param_mux',
      /param_max/,
    ],
    ['an invariant without a name', { policies: [], invariant: [{ param_max: { field: 'a', max: 1 } }] }, 'invariant[0].name', undefined],
    [
      'an invariant with two rules',
      { policies: [], invariant: [{ name: 'i', param_max: { field: 'a', max: 1 }, max_actions_per_session: 3 }] },
      'invariant[0]',
      /exactly one key/,
    ],
  ])('%s', (_label, doc, path, says) => {
    expectPolicyError(() => parsePolicyDocument(doc), path, says);
  });

  it('a misspelt policy key is named before the missing key it causes', () => {
    expectPolicyError(
      () => parsePolicyDocument({ policies: [{ name: 'p', effect: 'permit', conditons: [] }] }),
      'policies[0].conditons',
      /unknown key.*conditions/,
    );
  });

  it('non-finite numbers: JSON cannot spell them, TOML inf/nan and dict NaN are refused at the path', () => {
    expectPolicyError(
      () => Gate.fromJson('{"policies":[{"name":"p","effect":"permit","conditions":[{"param_max":{"field":"a","max":NaN}}]}]}'),
      '',
      /not valid JSON/,
    );
    const toml = (v: string) => `[[policy]]\nname = "p"\neffect = "permit"\nconditions = [{ param_max = { field = "a", max = ${v} } }]\n`;
    expectPolicyError(() => Gate.fromToml(toml('inf')), 'policy[0].conditions[0].param_max.max');
    expectPolicyError(() => Gate.fromToml(toml('-inf')), 'policy[0].conditions[0].param_max.max');
    expectPolicyError(() => Gate.fromToml(toml('nan')), 'policy[0].conditions[0].param_max.max');
    expect(() => Gate.fromToml(toml('1e3'))).not.toThrow();
  });

  it('TOML that is not TOML, and JSON that is not JSON, fail at the root', () => {
    expectPolicyError(() => Gate.fromToml('[[policy]\nname = '), '', /not valid TOML/);
    expectPolicyError(() => Gate.fromJson('{"policies": ['), '', /not valid JSON/);
    expectPolicyError(() => Gate.fromJson('[]'), '', /object/);
    expectPolicyError(() => Gate.fromJson('"policies"'), '', /object/);
    expectPolicyError(() => Gate.fromJson('null'), '', /object/);
  });

  it('duplicate JSON keys are refused at their path, as TOML refuses them', () => {
    expectPolicyError(
      () => Gate.fromJson('{"policies":[{"name":"a","effect":"refuse","conditions":[]}],"policies":[]}'),
      'policies',
      /duplicate key/,
    );
    expectPolicyError(
      () =>
        Gate.fromJson(
          '{"policies":[{"name":"a","effect":"permit","conditions":[]},{"name":"b","effect":"permit","conditions":[{"param_max":{"field":"x","max":1,"max":1e9}}]}]}',
        ),
      'policies[1].conditions[0].param_max.max',
      /duplicate key "max"/,
    );
    expectPolicyError(
      () => Gate.fromJson('{"policies":[{"name":"a","effect":"refuse","effect":"permit","conditions":[]}]}'),
      'policies[0].effect',
    );
    expectPolicyError(
      () => Gate.fromToml('[[policy]]\nname = "a"\nname = "b"\neffect = "permit"\nconditions = []\n'),
      '',
      /not valid TOML/,
    );
  });

  it('equal keys in sibling objects, and braces or quotes inside strings, are not duplicates', () => {
    const json =
      '{"policies":[{"name":"a \\"{\\\\","effect":"permit","conditions":[{"param_in":{"field":"k","values":["}","\\"policies\\":",","]}}]},' +
      '{"name":"b","effect":"permit","conditions":[{"param_in":{"field":"k","values":[1]}}]}]}';
    expect(Gate.fromJson(json).policyCount).toBe(2);
  });

  it('a leading byte-order mark is ignored in both formats', () => {
    expect(Gate.fromJson('\uFEFF{"policies":[]}').policyCount).toBe(0);
    expect(Gate.fromToml('\uFEFFpolicy = []').policyCount).toBe(0);
    const gate = gateOf({ policies: [{ name: 'all', effect: 'permit', conditions: [] }] });
    gate.reload('\uFEFF{"policies":[]}');
    expect(gate.policyCount).toBe(0);
  });

  it('TOML dates where durations belong are refused', () => {
    const toml = '[[policy]]\nname = "p"\neffect = "permit"\nconditions = [{ rate_limit = { max = 1, window = 1979-05-27 } }]\n';
    expectPolicyError(() => Gate.fromToml(toml), 'policy[0].conditions[0].rate_limit.window');
  });

  it.each([
    ['1w'],
    ['-5s'],
    ['0s'],
    [0],
    [-1],
    ['15 m'],
    ['m'],
    [''],
    ['1.5.2h'],
    ['400d'],
    [0.0001],
    ['0.4ms'],
    ['1e3'],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [true],
  ])('bad duration %j is refused at its path', (window) => {
    expectPolicyError(
      () => parsePolicyDocument(policyWith({ rate_limit: { max: 1, window } })),
      'policies[0].conditions[0].rate_limit.window',
    );
    expectPolicyError(() => parsePolicyDocument(policyWith({ session_age_max: window })), 'policies[0].conditions[0].session_age_max');
  });

  it.each([['30s'], ['15m'], ['24h'], ['7d'], ['250ms'], [90], ['1.5h'], [0.5]])('good duration %j loads', (window) => {
    expect(() => parsePolicyDocument(policyWith({ rate_limit: { max: 1, window } }))).not.toThrow();
  });

  it.each([
    ['9:00-17:00'],
    ['09:00-17:00 '],
    ['25:00-26:00'],
    ['09:60-17:00'],
    ['09:00-24:30'],
    ['09:00-09:00'],
    ['09:00'],
    ['09:00-17:00 Mars/Olympus_Mons'],
    ['09:00-17:00 Not_A_Zone'],
    ['09:00 - 17:00'],
    ['09:00-17:00 Europe/Berlin extra'],
    ['9am-5pm'],
    [''],
  ])('bad time window %j is refused at its path', (window) => {
    expectPolicyError(() => parsePolicyDocument(policyWith({ time_window: window })), 'policies[0].conditions[0].time_window');
  });

  it('an unknown zone is called an unknown time zone', () => {
    expectPolicyError(
      () => parsePolicyDocument(policyWith({ time_window: '09:00-17:00 Mars/Olympus_Mons' })),
      'policies[0].conditions[0].time_window',
      /unknown time zone/,
    );
  });

  it.each([
    ['09:00-17:00'],
    ['22:00-06:00 Asia/Kolkata'],
    ['00:00-24:00 UTC'],
    ['09:00-17:30 America/New_York'],
    ['08:00-12:00 Etc/GMT+5'],
    ['09:00-17:00 EST5EDT'],
    ['09:00-17:00 America/Port-au-Prince'],
    ['09:00-17:00 America/Argentina/Buenos_Aires'],
    ['09:00-17:00 Etc/GMT-14'],
  ])('good time window %j loads', (window) => {
    expect(() => parsePolicyDocument(policyWith({ time_window: window }))).not.toThrow();
  });

  it.each([['^refund\\..*$'], ['refund.(full|partial)'], ['refund.[a-z]+'], ['refund\\.full'], ['refund.**'], ['refund.{a,b}'], ['']])(
    'a regex-like or empty glob %j is refused where a glob belongs',
    (pattern) => {
      expectPolicyError(() => parsePolicyDocument(policyWith({ action: pattern })), 'policies[0].conditions[0].action');
      expectPolicyError(() => parsePolicyDocument(policyWith({ action: ['ok.*', pattern] })), 'policies[0].conditions[0].action[1]');
      expectPolicyError(
        () => parsePolicyDocument(policyWith({ param_glob: { field: 'f', pattern } })),
        'policies[0].conditions[0].param_glob.pattern',
      );
    },
  );

  it('an empty list where a glob list belongs is refused', () => {
    expectPolicyError(() => parsePolicyDocument(policyWith({ action: [] })), 'policies[0].conditions[0].action');
  });

  it('conditions nested past the limit are refused, at the deepest path', () => {
    let cond: unknown = { action: 'a' };
    for (let i = 0; i < 20; i++) cond = { not: cond };
    const err = expectPolicyError(
      () => parsePolicyDocument(policyWith(cond)),
      'policies[0].conditions[0].not.not.not.not.not.not.not.not.not',
      /deeper/,
    );
    expect(err.path.split('.not').length).toBeLessThan(12);
    let shallow: unknown = { action: 'a' };
    for (let i = 0; i < 8; i++) shallow = { any_of: [shallow] };
    expect(() => parsePolicyDocument(policyWith(shallow))).not.toThrow();
  });

  it('absurdly deep JSON is a PolicyError, not a crash', () => {
    const deep = `{"policies":[{"name":"p","effect":"permit","conditions":[${'{"not":'.repeat(5000)}{"action":"a"}${'}'.repeat(5000)}]}]}`;
    expect(() => Gate.fromJson(deep)).toThrow(PolicyError);
    const deepArray = `{"policies":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(() => Gate.fromJson(deepArray)).toThrow(PolicyError);
  });

  it('any_of must be a non-empty list of conditions', () => {
    expectPolicyError(() => parsePolicyDocument(policyWith({ any_of: [] })), 'policies[0].conditions[0].any_of');
    expectPolicyError(() => parsePolicyDocument(policyWith({ any_of: { action: 'a' } })), 'policies[0].conditions[0].any_of');
    expectPolicyError(
      () => parsePolicyDocument(policyWith({ any_of: [{ action: 'a' }, { acton: 'b' }] })),
      'policies[0].conditions[0].any_of[1].acton',
      /action/,
    );
  });

  it('stateful conditions inside any_of or not, or in a refuse policy, are refused', () => {
    const rate = { rate_limit: { max: 1, window: '1m' } };
    const budget = { budget: { field: 'amount', max: 10, window: '1d' } };
    expectPolicyError(
      () => parsePolicyDocument(policyWith({ any_of: [{ action: 'a' }, rate] })),
      'policies[0].conditions[0].any_of[1].rate_limit',
      /any_of or not/,
    );
    expectPolicyError(() => parsePolicyDocument(policyWith({ not: budget })), 'policies[0].conditions[0].not.budget', /any_of or not/);
    expectPolicyError(
      () => parsePolicyDocument(policyWith({ not: { any_of: [rate] } })),
      'policies[0].conditions[0].not.any_of[0].rate_limit',
    );
    expectPolicyError(() => parsePolicyDocument(policyWith(rate, 'refuse')), 'policies[0].conditions[0].rate_limit', /permit policy/);
    expectPolicyError(() => parsePolicyDocument(policyWith(budget, 'refuse')), 'policies[0].conditions[0].budget', /permit policy/);
  });

  it('__proto__ and constructor keys from JSON.parse are unknown keys, and pollute nothing', () => {
    expectPolicyError(() => Gate.fromJson('{"policies":[],"__proto__":{"polluted":true}}'), '__proto__', /unknown key/);
    expectPolicyError(
      () => Gate.fromJson('{"policies":[{"name":"p","effect":"permit","conditions":[{"__proto__":{"action":"a"}}]}]}'),
      'policies[0].conditions[0].__proto__',
    );
    expectPolicyError(
      () =>
        Gate.fromJson(
          '{"policies":[{"name":"p","effect":"permit","conditions":[{"param_max":{"field":"a","max":1,"__proto__":{"x":1}}}]}]}',
        ),
      'policies[0].conditions[0].param_max.__proto__',
    );
    expectPolicyError(
      () => Gate.fromJson('{"policies":[{"name":"p","effect":"permit","conditions":[],"constructor":1}]}'),
      'policies[0].constructor',
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('kill switch and reload', () => {
  const open = { policies: [{ name: 'all', effect: 'permit', conditions: [] }] };

  it.each([[''], ['   \n'], ['{}'], ['{"policies": []}'], ['policy = []'], ['# nothing but a comment\n']])(
    'reload(%j) refuses every later call',
    async (source) => {
      const gate = gateOf(open);
      expect(await outcome(gate, ctx())).toBe('permit');
      gate.reload(source);
      expect(gate.policyCount).toBe(0);
      expect(await outcome(gate, ctx())).toBe('NO_POLICY_MATCH');
      expect(await outcome(gate, ctx({ principalKind: 'user', actionName: 'anything.else' }))).toBe('NO_POLICY_MATCH');
    },
  );

  it('reload of an empty object or empty list refuses every later call', async () => {
    for (const source of [{}, { policies: [] }, { policy: [] }]) {
      const gate = gateOf(open);
      gate.reload(source);
      expect(await outcome(gate, ctx())).toBe('NO_POLICY_MATCH');
    }
  });

  it('an empty policy set refuses everything from the start', async () => {
    expect(await outcome(Gate.fromToml(''), ctx())).toBe('NO_POLICY_MATCH');
    expect(await outcome(Gate.fromJson(''), ctx())).toBe('NO_POLICY_MATCH');
    expect(await outcome(Gate.fromDict({}), ctx())).toBe('NO_POLICY_MATCH');
  });

  it.each([
    ['broken TOML', '[[policy]\nname='],
    ['broken JSON', '{"policies": [}'],
    ['a typo', { polciies: [] }],
    ['a bad condition', { policies: [{ name: 'p', effect: 'permit', conditions: [{ param_mac: {} }] }] }],
    ['null', null],
    ['an array', []],
    ['a number', 42],
  ])('a bad reload (%s) throws PolicyError and keeps the old set in force', async (_label, source) => {
    const gate = gateOf(open);
    expect(() => gate.reload(source as never)).toThrow(PolicyError);
    expect(gate.policyCount).toBe(1);
    expect(await outcome(gate, ctx())).toBe('permit');
  });

  it('reload replaces file invariants along with the policies', async () => {
    const gate = gateOf({ ...open, invariant: [{ name: 'cap', param_max: { field: 'amount', max: 10 } }] });
    expect(await outcome(gate, ctx({ params: { amount: 50 } }))).toBe('INVARIANT_VIOLATION');
    gate.reload(open);
    expect(await outcome(gate, ctx({ params: { amount: 50 } }))).toBe('permit');
  });

  it('an audit sink that throws or returns nothing cannot make reload or invalidate misbehave', async () => {
    for (const append of [
      () => {
        throw new Error('disk gone');
      },
      () => undefined,
      async () => {
        throw new Error('later');
      },
    ]) {
      const gate = gateOf({}, { audit: { append } as never });
      expect(() => gate.reload(open)).not.toThrow();
      expect(gate.policyCount).toBe(1);
      expect(() => gate.reload({ polciies: [] })).toThrow(PolicyError);
      expect(gate.policyCount).toBe(1);
      await expect(gate.invalidate({ type: 'global' })).resolves.toBeUndefined();
    }
  });

  it('reload with an explicit format parses that format', async () => {
    const gate = gateOf({});
    gate.reload('{"policies":[{"name":"all","effect":"permit","conditions":[]}]}', 'json');
    expect(await outcome(gate, ctx())).toBe('permit');
    gate.reload('[[policy]]\nname = "none"\neffect = "refuse"\nconditions = []\n', 'toml');
    expect(await outcome(gate, ctx())).toBe('POLICY_DENIED');
  });
});

describe('a polluted Object.prototype cannot lend a policy defaults it never wrote', () => {
  it('loading refuses while Object.prototype carries enumerable junk, in every format, and loads again once it is clean', () => {
    const toml = '[[policy]]\nname = "a"\neffect = "permit"\nconditions = [{ rate_limit = { max = 1, window = "1h" } }]\n';
    const proto = Object.prototype as Record<string, unknown>;
    proto.per = 'global';
    proto.combining = 'first-match';
    let results: unknown[];
    try {
      results = [
        () => parsePolicyText(toml, 'toml'),
        () => parsePolicyText('{"policies":[{"name":"a","effect":"permit","conditions":[]}]}', 'json'),
        () => parsePolicyDocument({ policies: [] }),
      ].map((load) => {
        try {
          return load();
        } catch (e) {
          return e;
        }
      });
    } finally {
      delete proto.per;
      delete proto.combining;
    }
    for (const r of results) {
      expect(r).toBeInstanceOf(PolicyError);
      expect((r as PolicyError).message).toMatch(/prototype/);
    }
    const clean = parsePolicyText(toml, 'toml');
    expect(clean.combining).toBe('deny-overrides');
  });
});
