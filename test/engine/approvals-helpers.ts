/** Shared by the approval tests: a refund policy with an approve step, calls, approvers. */
import type { ActionContext, Principal, Verdict } from '../../src/engine/index.ts';

export const ALICE: Principal = { id: 'alice', kind: 'user', roles: ['finance'] };
export const BOB: Principal = { id: 'bob', kind: 'user', roles: ['finance'] };
export const CAROL: Principal = { id: 'carol', kind: 'user', roles: ['finance'] };
export const MALLORY: Principal = { id: 'mallory', kind: 'user', roles: ['support'] };

/** Refunds permitted; those of 500 or more need a person (role finance or alice). */
export function refundPolicy(approval: Record<string, unknown> = {}, extra: Record<string, unknown>[] = []): object {
  return {
    policies: [
      { name: 'refunds', effect: 'permit', conditions: [{ action: 'refunds.issue' }] },
      {
        name: 'big_refunds_need_a_human',
        description: 'refunds of 500 or more',
        effect: 'approve',
        conditions: [{ action: 'refunds.issue' }, { param_min: { field: '/amount', min: 500 } }],
        approval: { approvers: ['role:finance', 'id:alice'], ...approval },
      },
      ...extra,
    ],
  };
}

export function refund(amount: number, extra: Partial<ActionContext> = {}): ActionContext {
  return {
    principalId: 'agent-7',
    principalKind: 'agent',
    actionName: 'refunds.issue',
    params: { amount, order: 'o-1' },
    sessionId: 's-1',
    ...extra,
  };
}

/** The request id an APPROVAL_REQUIRED / APPROVAL_DENIED verdict names (fails the test otherwise). */
export function requestId(v: Verdict): string {
  if (v.kind !== 'refuse' || !v.approval) throw new Error(`expected a verdict naming an approval request, got ${JSON.stringify(v)}`);
  return v.approval.id;
}
