import { describe, expect, it } from 'vitest';
import { Gate, PolicyError } from '../../src/engine/index.ts';
import { code, gateOf } from './helpers.ts';
import { refund, refundPolicy } from './approvals-helpers.ts';

const approve = (approval?: unknown, conditions: unknown[] = []): object => ({
  policies: [{ name: 'ask', effect: 'approve', conditions, ...(approval === undefined ? {} : { approval }) }],
});

function loadError(doc: object): PolicyError {
  try {
    Gate.fromDict(doc, { drift: false });
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('the policy loaded');
}

describe('the approve effect in the policy language', () => {
  it('loads the DESIGN §11 example from TOML with every approval field', () => {
    const gate = Gate.fromToml(`
[[policy]]
name = "big_refunds_need_a_human"
description = "refunds of 500 or more"
effect = "approve"
conditions = [ { action = "refunds.issue" }, { param_min = { field = "/amount", min = 500 } } ]
approval = { approvers = ["role:finance", "id:alice"], quorum = 1, timeout = "15m", grant_ttl = "5m", uses = 1 }
`);
    const [p] = gate.policies.policies;
    expect(p?.effect).toBe('approve');
    expect(p?.approval).toEqual({ approvers: ['role:finance', 'id:alice'], quorum: 1, timeoutMs: 900_000, grantTtlMs: 300_000, uses: 1 });
  });

  it('fills the defaults when the approval table is absent: anyone but the caller, quorum 1, 15m, 5m, 1 use', () => {
    const gate = gateOf(approve());
    expect(gate.policies.policies[0]?.approval).toEqual({ approvers: [], quorum: 1, timeoutMs: 900_000, grantTtlMs: 300_000, uses: 1 });
  });

  it.each([
    [{ approvers: ['finance'] }, 'policies[0].approval.approvers[0]', 'role:NAME'],
    [{ approvers: ['group:finance'] }, 'policies[0].approval.approvers[0]', 'role:NAME'],
    [{ approvers: ['role:'] }, 'policies[0].approval.approvers[0]', 'role:NAME'],
    [{ approvers: ['id: alice'] }, 'policies[0].approval.approvers[0]', 'spaces'],
    [{ approvers: 'role:finance' }, 'policies[0].approval.approvers', 'expected array'],
    [{ quorm: 2 }, 'policies[0].approval.quorm', 'did you mean "quorum"'],
    [{ quorum: 0 }, 'policies[0].approval.quorum', ''],
    [{ quorum: 1.5 }, 'policies[0].approval.quorum', ''],
    [{ quorum: Number.POSITIVE_INFINITY }, 'policies[0].approval.quorum', ''],
    [{ uses: Number.NaN }, 'policies[0].approval.uses', ''],
    [{ uses: 0 }, 'policies[0].approval.uses', ''],
    [{ timeout: 'soon' }, 'policies[0].approval.timeout', 'not a duration'],
    [{ grant_ttl: -5 }, 'policies[0].approval.grant_ttl', 'positive'],
    [{ grant_ttl: Number.POSITIVE_INFINITY }, 'policies[0].approval.grant_ttl', ''],
    [{ approvers: ['id:alice', 'id:bob'], quorum: 3 }, 'policies[0].approval.quorum', 'only 2 are listed'],
    [{ approvers: ['id:alice', 'id:alice'], quorum: 2 }, 'policies[0].approval.quorum', 'only 1 is listed'],
    ['yes', 'policies[0].approval', 'expected object'],
  ])('refuses the approval table %j, naming %s', (approval, path, message) => {
    const err = loadError(approve(approval));
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
  });

  it('allows a quorum above the listed ids when a role can bring more approvers', () => {
    expect(gateOf(approve({ approvers: ['id:alice', 'role:finance'], quorum: 3 })).policies.policies[0]?.approval?.quorum).toBe(3);
    expect(gateOf(approve({ quorum: 5 })).policies.policies[0]?.approval?.quorum).toBe(5);
  });

  it.each(['permit', 'refuse'])('refuses an approval table on a %s policy', (effect) => {
    const err = loadError({ policies: [{ name: 'p', effect, conditions: [], approval: { quorum: 1 } }] });
    expect(err.path).toBe('policies[0].approval');
    expect(err.message).toContain('only an approve policy');
  });

  it('refuses an unknown effect, naming the allowed ones', () => {
    const err = loadError({ policies: [{ name: 'p', effect: 'ask', conditions: [] }] });
    expect(err.path).toBe('policies[0].effect');
    expect(err.message).toContain('"approve"');
  });

  it('lets an approve policy carry rate limits and budgets', () => {
    const gate = gateOf(
      approve(undefined, [{ rate_limit: { max: 2, window: '1h' } }, { budget: { field: 'amount', max: 100, window: '1d' } }]),
    );
    expect(gate.policies.policies[0]?.stateful).toHaveLength(2);
  });
});

describe('combining with approve', () => {
  const refuseBig = {
    name: 'no_huge_refunds',
    effect: 'refuse',
    conditions: [{ action: 'refunds.issue' }, { param_min: { field: '/amount', min: 10_000 } }],
  };

  it('deny-overrides: refuse > approve > permit', async () => {
    const gate = gateOf(refundPolicy({}, [refuseBig]));
    expect(code(await gate.evaluate(refund(100)))).toBe('permit');
    expect(code(await gate.evaluate(refund(600)))).toBe('APPROVAL_REQUIRED');
    expect(code(await gate.evaluate(refund(20_000)))).toBe('POLICY_DENIED');
  });

  it('deny-overrides: an approve policy needs no permit policy beside it', async () => {
    const gate = gateOf({ policies: [{ name: 'ask', effect: 'approve', conditions: [{ action: 'git.push' }] }] });
    expect(code(await gate.evaluate({ principalId: 'a', principalKind: 'agent', actionName: 'git.push' }))).toBe('APPROVAL_REQUIRED');
    expect(code(await gate.evaluate({ principalId: 'a', principalKind: 'agent', actionName: 'git.pull' }))).toBe('NO_POLICY_MATCH');
  });

  it('first-match: the first matching policy by priority decides, approve included', async () => {
    const policies = (askFirst: boolean) => ({
      combining: 'first-match',
      policies: [
        { name: 'ask', effect: 'approve', priority: askFirst ? 1 : 2, conditions: [{ action: 'refunds.issue' }] },
        { name: 'ok', effect: 'permit', priority: askFirst ? 2 : 1, conditions: [{ action: 'refunds.issue' }] },
        {
          name: 'no',
          effect: 'refuse',
          priority: 0,
          conditions: [{ action: 'refunds.issue' }, { param_min: { field: 'amount', min: 10_000 } }],
        },
      ],
    });
    expect(code(await gateOf(policies(true)).evaluate(refund(600)))).toBe('APPROVAL_REQUIRED');
    expect(code(await gateOf(policies(false)).evaluate(refund(600)))).toBe('permit');
    expect(code(await gateOf(policies(true)).evaluate(refund(20_000)))).toBe('POLICY_DENIED');
  });

  it('first-match: a permit whose limit is spent falls through to the approve policy after it', async () => {
    const gate = gateOf({
      combining: 'first-match',
      policies: [
        { name: 'few', effect: 'permit', priority: 1, conditions: [{ action: 'refunds.issue' }, { rate_limit: { max: 1, window: '1h' } }] },
        { name: 'ask', effect: 'approve', priority: 2, conditions: [{ action: 'refunds.issue' }] },
      ],
    });
    expect(code(await gate.evaluate(refund(1)))).toBe('permit');
    expect(code(await gate.evaluate(refund(2)))).toBe('APPROVAL_REQUIRED');
  });

  it('asks a human for a value it cannot judge, rather than letting it ride past to an unbounded permit', async () => {
    const gate = gateOf(refundPolicy());
    const asked = (amount: unknown) => gate.evaluate({ ...refund(0), params: { amount, order: 'o-1' } });
    for (const amount of ['5000', [5000], { n: 5000 }, true]) expect(code(await asked(amount))).toBe('APPROVAL_REQUIRED');
    expect(code(await asked(100))).toBe('permit');
  });

  it('compares principal ids exactly in an approve policy (a * is literal), like a permit policy', async () => {
    const gate = gateOf({ policies: [{ name: 'ask', effect: 'approve', conditions: [{ identity_id: 'bot-*' }] }] });
    expect(code(await gate.evaluate({ principalId: 'bot-*', principalKind: 'agent', actionName: 'x' }))).toBe('APPROVAL_REQUIRED');
    expect(code(await gate.evaluate({ principalId: 'bot-1', principalKind: 'agent', actionName: 'x' }))).toBe('NO_POLICY_MATCH');
  });

  it('reads globs in an approve policy the narrower way, like a permit policy', async () => {
    const gate = gateOf({ policies: [{ name: 'ask', effect: 'approve', conditions: [{ action: 'refund.*' }] }] });
    expect(code(await gate.evaluate({ principalId: 'a', principalKind: 'agent', actionName: 'refund.create' }))).toBe('APPROVAL_REQUIRED');
    expect(code(await gate.evaluate({ principalId: 'a', principalKind: 'agent', actionName: 'refunds' }))).toBe('NO_POLICY_MATCH');
  });
});
