import { randomUUID } from 'node:crypto';
import { hashArgs } from '../canonical-json.ts';
import type { JsonValue, Principal, ValidContext } from '../context.ts';
import type { CompiledPolicy } from '../policy/policy-set.ts';
import { redact } from '../redact.ts';
import type { ApprovalRequest, StoredApproval } from './types.ts';

export interface Binding {
  /** Equal exactly for the same call under the same approve policy and rule. */
  key: string;
  /** The arguments' hash, as the permit's `args` claim. */
  argsHash: string;
}

/**
 * What a human's answer is bound to: principal (id and kind), action, resource, audience, session
 * and arguments hash — and the approve policy and its rule, so a grant made under one policy
 * never lets a call through that a reloaded, stricter one asks about.
 */
export function bindingOf(ctx: ValidContext, policy: CompiledPolicy): Binding {
  const argsHash = hashArgs(ctx.params);
  const rule = policy.approval;
  const key = hashArgs({
    v: 1,
    p: ctx.principalId,
    k: ctx.principalKind,
    a: ctx.actionName,
    r: ctx.resource,
    u: ctx.audience,
    s: ctx.sessionId,
    x: argsHash,
    pol: policy.name,
    rule: rule ? { ap: [...rule.approvers], q: rule.quorum, t: rule.timeoutMs, g: rule.grantTtlMs, n: rule.uses } : null,
  });
  return { key, argsHash };
}

/** A new pending request for the call, with the arguments an approver may see. */
export function newRequest(
  ctx: ValidContext,
  policy: CompiledPolicy,
  binding: Binding,
  redactPointers: readonly (readonly string[])[],
  now: number,
): StoredApproval {
  const rule = policy.approval;
  if (!rule) throw new Error(`policy '${policy.name}' has no approval rule`);
  const principal: Principal = { id: ctx.principalId, kind: ctx.principalKind };
  if (ctx.roles.length > 0) principal.roles = [...ctx.roles];
  const request: StoredApproval = {
    id: randomUUID(),
    status: 'pending',
    policy: policy.name,
    reason: policy.description ?? policy.name,
    principal,
    action: ctx.actionName,
    argsHash: binding.argsHash,
    createdAt: now,
    expiresAt: now + rule.timeoutMs,
    decisions: [],
    key: binding.key,
    rule,
    usesLeft: 0,
  };
  if (ctx.resource !== undefined) request.resource = ctx.resource;
  if (ctx.audience !== undefined) request.audience = ctx.audience;
  if (ctx.sessionId !== undefined) request.sessionId = ctx.sessionId;
  if (ctx.params !== undefined) request.args = redact(ctx.params as JsonValue, redactPointers).value;
  return request;
}

/** Whether `approver` may decide a request made under `rule`: listed by role or id (empty list: anyone). */
export function mayDecide(approvers: readonly string[], approver: Principal): boolean {
  if (approvers.length === 0) return true;
  const roles = approver.roles ?? [];
  return approvers.some((a) => (a.startsWith('role:') ? roles.includes(a.slice(5)) : a === `id:${approver.id}`));
}

/** The request as the public API shows it: without the store's bookkeeping. */
export function publicView(r: StoredApproval): ApprovalRequest {
  const { key: _key, rule: _rule, usesLeft: _uses, ...request } = r;
  return structuredClone(request);
}
