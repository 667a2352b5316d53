import { randomUUID } from 'node:crypto';
import { ApprovalError, type ApprovalRequest } from '../engine/approvals/types.ts';
import { hashArgs } from '../engine/canonical-json.ts';
import { PRINCIPAL_KINDS, type Principal } from '../engine/context.ts';
import type { Gate } from '../engine/gate.ts';
import { formatRefusal } from '../engine/refusal.ts';
import type { RefuseVerdict } from '../engine/verdict.ts';
import {
  actionNameFor,
  contextFor,
  toParams,
  type AdapterOptions,
  type GateDecision,
  type GateLike,
  type ToolCallAttempt,
} from './shared.ts';
export { CallMemory, callMemoryOf } from './call-memory.ts';

/**
 * What the framework approval seams share (DESIGN §11): reading a decision as "waits for a
 * person", handing one evaluation of a call from the framework's approval check to its execution
 * check, finding the request a call made, and the answer a person gives. No framework imports.
 */

/** A gate whose requests people can decide: `evaluate` plus `approvals`. */
export type ApprovalGateLike = GateLike & { approvals: Pick<Gate['approvals'], 'decide' | 'get' | 'list'> };

export function hasApprovals(gate: GateLike): gate is ApprovalGateLike {
  const approvals = (gate as { approvals?: unknown }).approvals;
  return typeof approvals === 'object' && approvals !== null && typeof (approvals as { decide?: unknown }).decide === 'function';
}

/** A person's answer to one request: the resume value of a LangChain interrupt, and the shape every seam decides with. */
export interface KavachApprovalAnswer {
  decision: 'grant' | 'deny';
  /** Who decides. Adapters that know the person (the host app's signed-in user) supply it when absent. */
  approver?: Principal;
  note?: string;
}

/** The answer, checked: anything else is undefined (and decides nothing). */
export function readApprovalAnswer(value: unknown): KavachApprovalAnswer | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { decision, approver, note } = value as Record<string, unknown>;
  if (decision !== 'grant' && decision !== 'deny') return undefined;
  const answer: KavachApprovalAnswer = { decision };
  if (approver !== undefined) {
    if (!isPrincipal(approver)) return undefined;
    answer.approver = approver;
  }
  if (note !== undefined) {
    if (typeof note !== 'string') return undefined;
    answer.note = note;
  }
  return answer;
}

function isPrincipal(value: unknown): value is Principal {
  if (value === null || typeof value !== 'object') return false;
  const { id, kind, roles } = value as Record<string, unknown>;
  return (
    typeof id === 'string' &&
    id.length > 0 &&
    (PRINCIPAL_KINDS as readonly unknown[]).includes(kind) &&
    (roles === undefined || (Array.isArray(roles) && roles.every((r) => typeof r === 'string')))
  );
}

/** The request a call waits on (APPROVAL_REQUIRED with an id), else undefined. */
export function awaitedApproval(decision: GateDecision): { id: string; expiresAt: number } | undefined {
  if (decision.allowed || decision.verdict.kind !== 'refuse' || decision.verdict.code !== 'APPROVAL_REQUIRED') return undefined;
  return decision.verdict.approval;
}

/**
 * Whether the call rests on a person: it waits for one, or it is permitted by a grant. Frameworks
 * ask their approval check again after the person answered (ai@6 turns a "no" into a denial), so
 * a granted call must still say yes.
 */
export function restsOnPerson(decision: GateDecision): boolean {
  if (decision.mode === 'observe') return false;
  if (awaitedApproval(decision)) return true;
  return decision.allowed && decision.verdict.kind === 'permit' && decision.verdict.approval !== undefined;
}

/** The refusal a denied request gives its call: the one the gate gives when the call is tried again. */
export function deniedVerdict(request: ApprovalRequest): RefuseVerdict {
  return {
    kind: 'refuse',
    evaluationId: randomUUID(),
    code: 'APPROVAL_DENIED',
    evaluator: 'approval',
    policy: request.policy,
    reason: `'${request.policy}' asks a person to approve '${request.action}', and it was denied (request ${request.id})`,
    approval: { id: request.id, expiresAt: request.expiresAt },
  };
}

/**
 * The text a model reads for a call that waits for a person, where the framework has no approval
 * seam (the OpenAI SDK): the standard refusal, then how it will be decided and what to do.
 */
export function refusalWithApprovalHint(decision: GateDecision & { allowed: false }): string {
  const waiting = awaitedApproval(decision);
  if (!waiting) return decision.refusal;
  const until = new Date(waiting.expiresAt).toISOString();
  return (
    `${decision.refusal} A person decides request ${waiting.id} (until ${until}); once it is granted, this exact call ` +
    '(same arguments) will run when made again. Tell the user it is waiting for approval; do not retry it before then, ' +
    'and do not change the arguments to get around it (other arguments need their own approval).'
  );
}

export function deniedRefusal(request: ApprovalRequest): string {
  return formatRefusal(deniedVerdict(request));
}

/**
 * The pending request a call made, found from the call itself (after a restart, or on another
 * replica): same principal, action, resource, audience, session and arguments hash as the gate
 * binds. The newest when several match. ApprovalError NOT_FOUND when none does.
 */
export async function findPendingRequest<R>(
  gate: ApprovalGateLike,
  opts: AdapterOptions<R>,
  attempt: ToolCallAttempt<R>,
): Promise<ApprovalRequest> {
  const actionName = actionNameFor(opts, attempt.toolName);
  let params: Record<string, unknown> | undefined;
  try {
    params = toParams(attempt.args);
  } catch {
    params = undefined;
  }
  const built = await contextFor(opts, attempt, actionName, params);
  if ('refusal' in built)
    throw new ApprovalError('NOT_FOUND', '', `no approval request for '${attempt.toolName}': ${built.refusal.reason}`);
  const { ctx } = built;
  const argsHash = hashArgs(ctx.params);
  const pending = await gate.approvals.list({ status: 'pending', principalId: ctx.principalId });
  const match = pending.find(
    (r) =>
      r.action === ctx.actionName &&
      r.argsHash === argsHash &&
      r.principal.kind === ctx.principalKind &&
      r.sessionId === ctx.sessionId &&
      r.resource === ctx.resource &&
      r.audience === ctx.audience,
  );
  if (!match) throw new ApprovalError('NOT_FOUND', '', `no pending approval request for this '${attempt.toolName}' call`);
  return match;
}
