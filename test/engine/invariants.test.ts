import { describe, expect, it } from 'vitest';
import { Gate, PolicyError, parsePolicyText, type ActionContext, type InvariantSpec } from '../../src/engine/index.ts';
import { ctx, gateOf, loadError, manualClock, outcome } from './helpers.ts';

const OPEN = { policies: [{ name: 'all', effect: 'permit', conditions: [] }] };

describe('code invariants', () => {
  it('param_max holds past any policy and fails closed on missing or non-numeric values', async () => {
    const gate = gateOf(OPEN, { invariants: [{ name: 'refund_cap', param_max: { field: '/refund/amount', max: 5000 } }] });
    expect(await outcome(gate, ctx({ params: { refund: { amount: 5000 } } }))).toBe('permit');
    const over = await gate.evaluate(ctx({ params: { refund: { amount: 5001 } } }));
    expect(over).toMatchObject({ kind: 'refuse', code: 'INVARIANT_VIOLATION', evaluator: 'invariant' });
    expect(over.kind === 'refuse' && over.reason).toMatch(/refund_cap/);
    for (const refund of [{}, { amount: '10' }, { amount: null }, { amount: [1] }, { amount: true }]) {
      expect(await outcome(gate, ctx({ params: { refund } }))).toBe('INVARIANT_VIOLATION');
    }
    expect(await outcome(gate, ctx())).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ params: { refund: { amount: Number.NaN } } }))).toBe('INVALID_CONTEXT');
  });

  it('param_min fails closed the same way', async () => {
    const gate = gateOf(OPEN, { invariants: [{ name: 'positive', param_min: { field: 'qty', min: 1 } }] });
    expect(await outcome(gate, ctx({ params: { qty: 1 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { qty: 0 } }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ params: {} }))).toBe('INVARIANT_VIOLATION');
  });

  it('actions scopes an invariant to matching actions', async () => {
    const gate = gateOf(OPEN, { invariants: [{ name: 'cap', actions: ['refund.*'], param_max: { field: 'amount', max: 10 } }] });
    expect(await outcome(gate, ctx({ actionName: 'refund.full', params: { amount: 11 } }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ actionName: 'ticket.read', params: { amount: 11 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'ticket.read' }))).toBe('permit');
  });

  it('allowed_actions and blocked_actions', async () => {
    const gate = gateOf(OPEN, {
      invariants: [
        { name: 'only_fs_and_ticket', allowed_actions: ['fs.*', 'ticket.*'] },
        { name: 'never_rm', blocked_actions: ['fs.delete*'] },
      ],
    });
    expect(await outcome(gate, ctx({ actionName: 'fs.read' }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'fs.delete_tree' }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ actionName: 'shell.exec' }))).toBe('INVARIANT_VIOLATION');
  });

  it('max_actions_per_session counts calls in the session and needs a session', async () => {
    const gate = gateOf(OPEN, { invariants: [{ name: 'short', max_actions_per_session: 2 }] });
    expect(await outcome(gate, ctx())).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ sessionId: 's2' }))).toBe('permit');
  });

  it('max_session_age needs a young session', async () => {
    const clock = manualClock();
    const gate = gateOf(OPEN, { clock: clock.now, invariants: [{ name: 'fresh', max_session_age: '10m' }] });
    expect(await outcome(gate, ctx())).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    clock.advance(10 * 60_000 + 1);
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('INVARIANT_VIOLATION');
  });

  it('a predicate: true permits, anything else (false, truthy non-true, a promise, a throw) refuses', async () => {
    const cases: [string, (c: ActionContext) => boolean, string][] = [
      ['yes', () => true, 'permit'],
      ['no', () => false, 'INVARIANT_VIOLATION'],
      ['one', () => 1 as unknown as boolean, 'INVARIANT_VIOLATION'],
      ['later', (() => Promise.resolve(true)) as unknown as () => boolean, 'INVARIANT_VIOLATION'],
      [
        'boom',
        () => {
          throw new Error('predicate exploded');
        },
        'INVARIANT_VIOLATION',
      ],
      [
        'throws a string',
        () => {
          throw 'nope';
        },
        'INVARIANT_VIOLATION',
      ],
    ];
    for (const [name, check, expected] of cases) {
      const gate = gateOf(OPEN, { invariants: [{ name, check }] });
      const v = await gate.evaluate(ctx());
      expect(v.kind === 'refuse' ? v.code : v.kind, name).toBe(expected);
      if (name === 'boom' && v.kind === 'refuse') expect(v.reason).toMatch(/predicate exploded/);
    }
  });

  it('a predicate sees the call and cannot change what the gate decides on', async () => {
    const seen: ActionContext[] = [];
    const gate = gateOf(
      { policies: [{ name: 'small', effect: 'permit', conditions: [{ param_max: { field: 'amount', max: 10 } }] }] },
      {
        invariants: [
          {
            name: 'meddler',
            check: (c) => {
              seen.push(c);
              (c.params as Record<string, unknown>).amount = 1;
              c.actionName = 'other';
              return true;
            },
          },
        ],
        signer: { issue: async (r) => ({ token: JSON.stringify(r.args), id: r.action }) },
      },
    );
    const v = await gate.evaluate(ctx({ params: { amount: 7 } }));
    expect(seen[0]?.principalId).toBe('agent-1');
    expect(v.kind === 'permit' && v.permit).toBe('{"amount":7}');
    expect(v.kind === 'permit' && v.permitId).toBe('tool.run');
  });

  it('code invariants survive a reload; file invariants reload with their file', async () => {
    const gate = gateOf(
      { ...OPEN, invariant: [{ name: 'file_cap', param_max: { field: 'amount', max: 100 } }] },
      {
        invariants: [{ name: 'code_block', blocked_actions: ['shell.*'] }],
      },
    );
    expect(await outcome(gate, ctx({ params: { amount: 500 } }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ actionName: 'shell.exec', params: { amount: 1 } }))).toBe('INVARIANT_VIOLATION');
    gate.reload({ ...OPEN, invariant: [{ name: 'file_cap', param_max: { field: 'amount', max: 1000 } }] });
    expect(await outcome(gate, ctx({ params: { amount: 500 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'shell.exec', params: { amount: 1 } }))).toBe('INVARIANT_VIOLATION');
    gate.reload('');
    expect(await outcome(gate, ctx({ actionName: 'shell.exec' }))).toBe('NO_POLICY_MATCH');
    gate.reload(OPEN);
    expect(await outcome(gate, ctx({ params: { amount: 1e9 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ actionName: 'shell.exec' }))).toBe('INVARIANT_VIOLATION');
  });

  it('a policy refusal is reported before an invariant violation', async () => {
    const gate = gateOf({ policies: [] }, { invariants: [{ name: 'never', check: () => false }] });
    expect(await outcome(gate, ctx())).toBe('NO_POLICY_MATCH');
  });

  it('a file invariant in TOML loads and holds', async () => {
    const gate = Gate.fromToml(
      `
[[policy]]
name = "all"
effect = "permit"
conditions = []

[[invariant]]
name = "cap"
description = "never more than 5000"
param_max = { field = "amount", max = 5000 }
`,
      { drift: false },
    );
    expect(await outcome(gate, ctx({ params: { amount: 5000 } }))).toBe('permit');
    expect(await outcome(gate, ctx({ params: { amount: 5001 } }))).toBe('INVARIANT_VIOLATION');
  });
});

describe('bad invariant specs are refused when the gate is built', () => {
  it.each([
    ['NaN max', [{ name: 'i', param_max: { field: 'a', max: Number.NaN } }], 'invariants[0].param_max.max'],
    ['Infinity min', [{ name: 'i', param_min: { field: 'a', min: Number.NEGATIVE_INFINITY } }], 'invariants[0].param_min.min'],
    ['a misspelt rule', [{ name: 'i', param_mux: { field: 'a', max: 1 } }], 'invariants[0].param_mux'],
    ['no rule', [{ name: 'i' }], 'invariants[0]'],
    ['no name', [{ param_max: { field: 'a', max: 1 } }], 'invariants[0].name'],
    ['a check that is not a function', [{ name: 'i', check: 'return true' }], 'invariants[0].check'],
    ['a check with a rule beside it', [{ name: 'i', check: (): boolean => true, max_actions_per_session: 3 }], 'invariants[0]'],
    ['empty actions', [{ name: 'i', actions: [], check: (): boolean => true }], 'invariants[0].actions'],
    [
      'duplicate names',
      [
        { name: 'i', check: (): boolean => true },
        { name: 'i', blocked_actions: ['x'] },
      ],
      'invariants[1].name',
    ],
    ['a bad duration', [{ name: 'i', max_session_age: 'a while' }], 'invariants[0].max_session_age'],
    ['zero actions per session', [{ name: 'i', max_actions_per_session: 0 }], 'invariants[0].max_actions_per_session'],
  ] as [string, unknown[], string][])('%s', (_label, invariants, path) => {
    let caught: unknown;
    try {
      Gate.fromDict(OPEN, { invariants: invariants as InvariantSpec[] });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect((caught as PolicyError).path).toBe(path);
  });
});

describe("Kavach's tuple shorthand [name, field, max]", () => {
  const cap: InvariantSpec = ['hard_cap', 'amount', 50_000];

  it('is a param_max in code: above the cap, and a call without the field, are refused', async () => {
    const gate = gateOf(OPEN, { invariants: [cap] });
    expect(await outcome(gate, ctx({ params: { amount: 50_000 } }))).toBe('permit');
    const over = await gate.evaluate(ctx({ params: { amount: 50_000.5 } }));
    expect(over).toMatchObject({ kind: 'refuse', code: 'INVARIANT_VIOLATION' });
    expect(over.kind === 'refuse' && over.reason).toMatch(/hard_cap/);
    // Kavach lets a call without the field pass; here a missing value fails closed (scope with `actions`).
    expect(await outcome(gate, ctx())).toBe('INVARIANT_VIOLATION');
  });

  it('is a param_max in policy files (JSON, TOML and dicts), and survives nothing more than its file', async () => {
    const json = Gate.fromJson(JSON.stringify({ ...OPEN, invariants: [['hard_cap', 'amount', 50000]] }), { drift: false });
    const toml = Gate.fromToml(
      `
invariant = [["hard_cap", "/order/amount", 50000]]
[[policy]]
name = "all"
effect = "permit"
conditions = []
`,
      { drift: false },
    );
    expect(await outcome(json, ctx({ params: { amount: 60_000 } }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(json, ctx({ params: { amount: 10 } }))).toBe('permit');
    expect(await outcome(toml, ctx({ params: { order: { amount: 60_000 } } }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(toml, ctx({ params: { order: { amount: 10 } } }))).toBe('permit');
    toml.reload(JSON.stringify(OPEN));
    expect(await outcome(toml, ctx({ params: { order: { amount: 60_000 } } }))).toBe('permit');
  });

  it('mixes with tables and other tuples; names stay unique', async () => {
    const gate = gateOf(OPEN, { invariants: [cap, ['floor', 'qty', 10], { name: 'no_rm', blocked_actions: ['fs.rm'] }] });
    expect(await outcome(gate, ctx({ params: { amount: 1, qty: 11 } }))).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, ctx({ params: { amount: 1, qty: 10 } }))).toBe('permit');
    expect(() => gateOf(OPEN, { invariants: [cap, { name: 'hard_cap', blocked_actions: ['x'] }] })).toThrow(/duplicate invariant name/);
  });

  it.each([
    ['a min-style fourth item (the seed defines none)', ['min_x', 'amount', 1, 'min'], 'invariants[0]'],
    ['two items', ['hard_cap', 'amount'], 'invariants[0]'],
    ['an empty name', ['', 'amount', 1], 'invariants[0][0]'],
    ['a number for the field', ['cap', 5, 1], 'invariants[0][1]'],
    ['a bad JSON Pointer', ['cap', '/a~2', 1], 'invariants[0][1]'],
    ['a string max', ['cap', 'amount', '50000'], 'invariants[0][2]'],
    ['an infinite max', ['cap', 'amount', Number.POSITIVE_INFINITY], 'invariants[0][2]'],
    ['a NaN max', ['cap', 'amount', Number.NaN], 'invariants[0][2]'],
  ] as [string, unknown[], string][])('refuses %s', (_label, tuple, path) => {
    for (const build of [
      () => Gate.fromDict(OPEN, { invariants: [tuple as unknown as InvariantSpec] }),
      () => Gate.fromDict({ ...OPEN, invariants: [tuple] }),
    ]) {
      let caught: unknown;
      try {
        build();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(PolicyError);
      expect((caught as PolicyError).path).toBe(path);
    }
  });

  it('refuses an infinite max in a TOML file, naming the item', () => {
    expect(() => Gate.fromToml('invariants = [["cap", "amount", inf]]')).toThrow(expect.objectContaining({ path: 'invariants[0][2]' }));
  });
});

describe('file invariants are checked like code invariants', () => {
  it('two file invariants with one name are refused at the second', () => {
    const err = loadError({
      policies: [],
      invariant: [
        { name: 'cap', param_max: { field: 'a', max: 1 } },
        { name: 'cap', param_min: { field: 'a', min: 0 } },
      ],
    });
    expect(err.path).toBe('invariant[1].name');
    expect(err.message).toMatch(/duplicate invariant name/);
  });

  it('a misspelt key beside a rule is named as an unknown key at its path', () => {
    const err = loadError({ policies: [], invariant: [{ name: 'cap', descripton: 'x', param_max: { field: 'a', max: 1 } }] });
    expect(err.path).toBe('invariant[0].descripton');
    expect(err.message).toMatch(/unknown key \(did you mean "description"\?\)/);
    const err2 = loadError({ policies: [], invariants: [{ name: 'cap', action: ['a.*'], blocked_actions: ['x'] }] });
    expect(err2.path).toBe('invariants[0].action');
    expect(err2.message).toMatch(/did you mean "actions"/);
  });

  it('combining written below an [[invariant]] table says where it belongs, as below [[policy]]', () => {
    let caught: unknown;
    try {
      parsePolicyText('[[invariant]]\nname = "cap"\nparam_max = { field = "a", max = 1 }\ncombining = "first-match"\n', 'toml');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect((caught as PolicyError).path).toBe('invariant[0].combining');
    expect((caught as PolicyError).message).toMatch(/above the first/);
  });
});
