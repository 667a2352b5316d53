import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, type ActionContext } from '../../src/engine/index.ts';
import { code, gateOf } from './helpers.ts';
import { ALICE, requestId } from './approvals-helpers.ts';

// Any call to `pay.*` needs a person; the grants below allow several uses so a wrongly matched
// call would find one left to take.
const POLICY = {
  policies: [{ name: 'ask', effect: 'approve', conditions: [{ action: 'pay.*' }], approval: { uses: 3, approvers: ['role:finance'] } }],
};

const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 6 }),
    fc.integer({ min: -1_000, max: 1_000 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), tie('value'), { maxKeys: 3 }),
  ),
})).value;

const call: fc.Arbitrary<ActionContext> = fc.record(
  {
    principalId: fc.constantFrom('agent-1', 'agent-2', 'svc'),
    principalKind: fc.constantFrom('agent', 'service', 'user') as fc.Arbitrary<ActionContext['principalKind']>,
    actionName: fc.constantFrom('pay.send', 'pay.refund'),
    resource: fc.option(fc.constantFrom('acct/1', 'acct/2'), { nil: undefined }),
    audience: fc.option(fc.constantFrom('bank', 'ledger'), { nil: undefined }),
    sessionId: fc.option(fc.constantFrom('s-1', 's-2'), { nil: undefined }),
    params: fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), json, { maxKeys: 4 }) as fc.Arbitrary<Record<string, unknown>>,
  },
  { requiredKeys: ['principalId', 'principalKind', 'actionName', 'params'] },
);

type Field = 'params' | 'sessionId' | 'resource' | 'audience' | 'principalId' | 'principalKind' | 'actionName';

/** The same call with one bound field changed (to another value, or added, or removed). */
const changed: fc.Arbitrary<[ActionContext, ActionContext]> = fc
  .tuple(call, call, fc.constantFrom<Field>('params', 'sessionId', 'resource', 'audience', 'principalId', 'principalKind', 'actionName'))
  .map(([base, other, field]): [ActionContext, ActionContext] => {
    const next: ActionContext = { ...base };
    if (other[field] === undefined) delete next[field];
    else (next as unknown as Record<string, unknown>)[field] = other[field];
    return [base, next];
  })
  .filter(([a, b]) => canonicalJson(strip(a)) !== canonicalJson(strip(b)));

function strip(c: ActionContext): Record<string, unknown> {
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined));
}

describe('approval properties', () => {
  it('a grant never permits another call (changed args, session, resource, audience, principal or action)', async () => {
    await fc.assert(
      fc.asyncProperty(changed, async ([granted, other]) => {
        const gate = gateOf(POLICY);
        const id = requestId(await gate.evaluate(granted));
        await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
        const verdict = await gate.evaluate(other);
        expect(verdict.kind).not.toBe('permit');
        // ... and took none of the grant's uses: the granted call still has all three.
        for (let i = 0; i < 3; i++) expect(await gate.evaluate(granted)).toMatchObject({ kind: 'permit', approval: { id } });
        expect(code(await gate.evaluate(granted))).toBe('APPROVAL_REQUIRED');
      }),
      { numRuns: 150 },
    );
  });

  it('N concurrent retries of a grant with `uses` U: exactly min(N, U) permits, the rest asked again', async () => {
    await fc.assert(
      fc.asyncProperty(call, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 12 }), async (c, uses, n) => {
        const gate = gateOf({ policies: [{ name: 'ask', effect: 'approve', conditions: [], approval: { uses } }] });
        const id = requestId(await gate.evaluate(c));
        await gate.approvals.decide(id, { approver: ALICE, decision: 'grant' });
        const verdicts = await Promise.all(Array.from({ length: n }, () => gate.evaluate(c)));
        const permits = verdicts.filter((v) => v.kind === 'permit');
        expect(permits).toHaveLength(Math.min(n, uses));
        for (const p of permits) expect(p).toMatchObject({ approval: { id } });
        for (const v of verdicts) if (v.kind !== 'permit') expect(code(v)).toBe('APPROVAL_REQUIRED');
      }),
      { numRuns: 100 },
    );
  });
});
