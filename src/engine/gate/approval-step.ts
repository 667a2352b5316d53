import type { ValidContext } from '../context.ts';
import type { ApprovalSubject } from '../approvals/events.ts';
import type { Binding } from '../approvals/binding.ts';
import type { ApprovalOpenOutcome, ApprovalOpenResult } from '../ports.ts';
import type { CompiledPolicy } from '../policy/policy-set.ts';
import type { RefuseVerdict } from '../verdict.ts';
import { refuse } from './decision.ts';
import { storeError } from './store-calls.ts';

/** The approval a decision rests on: which request, for which call, and whether a use was taken. */
export interface ApprovalHold {
  id: string;
  key: string;
  subject: ApprovalSubject;
  /** A use of the grant was taken for this call (given back if the call is refused later). */
  consumed: boolean;
  /** Uses left after this call's. */
  usesLeft: number;
}

/** The hold of a call whose request the store found granted (or whose grant it just used). */
export function holdOf(opened: ApprovalOpenResult, ctx: ValidContext, policy: CompiledPolicy, binding: Binding): ApprovalHold {
  const id = opened.id as string;
  return {
    id,
    key: binding.key,
    subject: subjectOf(ctx, policy, binding, id),
    consumed: opened.outcome === 'used',
    usesLeft: opened.usesLeft as number,
  };
}

const OUTCOMES: ReadonlySet<ApprovalOpenOutcome> = new Set(['created', 'pending', 'denied', 'used', 'granted', 'none']);

/** The store's answer, checked: anything it cannot vouch for is a store failure, never a permit. */
export function checkOpened(opened: ApprovalOpenResult, looking: boolean): ApprovalOpenResult {
  const { outcome, id, expiresAt } = opened;
  if (!OUTCOMES.has(outcome)) storeError(new Error('the approval store gave a malformed answer'));
  if (outcome === 'none') return opened;
  if (typeof id !== 'string' || id.length === 0 || typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    storeError(new Error('the approval store gave a malformed answer'));
  }
  if ((outcome === 'used' || outcome === 'granted') && !(Number.isSafeInteger(opened.usesLeft) && (opened.usesLeft as number) >= 0)) {
    storeError(new Error('the approval store gave a malformed answer'));
  }
  // Only a look may find a grant untouched; only an enforcing call may take a use or create.
  if (looking ? outcome === 'used' || outcome === 'created' : outcome === 'granted')
    storeError(new Error('the approval store gave a malformed answer'));
  return opened;
}

export function subjectOf(ctx: ValidContext, policy: CompiledPolicy, binding: Binding, id: string): ApprovalSubject {
  const subject: ApprovalSubject = {
    id,
    policy: policy.name,
    principal: { id: ctx.principalId, kind: ctx.principalKind },
    action: ctx.actionName,
    argsHash: binding.argsHash,
  };
  if (ctx.resource !== undefined) subject.resource = ctx.resource;
  if (ctx.audience !== undefined) subject.audience = ctx.audience;
  if (ctx.sessionId !== undefined) subject.sessionId = ctx.sessionId;
  return subject;
}

/** APPROVAL_REQUIRED / APPROVAL_DENIED for a call whose request is waiting or was denied. */
export function approvalRefusal(
  evaluationId: string,
  policy: CompiledPolicy,
  ctx: ValidContext,
  opened: ApprovalOpenResult,
): RefuseVerdict {
  const asked = `'${policy.name}' asks a person to approve '${ctx.actionName}'`;
  let verdict: RefuseVerdict;
  if (opened.outcome === 'denied') {
    verdict = refuse(
      evaluationId,
      'APPROVAL_DENIED',
      'approval',
      // No "until": a denial is the answer; when the request lapses is not the caller's concern.
      `${asked}, and it was denied (request ${opened.id})`,
    );
  } else if (opened.id === undefined) {
    verdict = refuse(evaluationId, 'APPROVAL_REQUIRED', 'approval', `${asked} (observe mode: no request made)`);
  } else {
    verdict = refuse(
      evaluationId,
      'APPROVAL_REQUIRED',
      'approval',
      `${asked}: ${policy.description ?? policy.name} (request ${opened.id}, waiting until ${iso(opened.expiresAt)})`,
    );
  }
  verdict.policy = policy.name;
  if (opened.id !== undefined && opened.expiresAt !== undefined) verdict.approval = { id: opened.id, expiresAt: opened.expiresAt };
  return verdict;
}

function iso(ms: number | undefined): string {
  const d = new Date(ms ?? Number.NaN);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
