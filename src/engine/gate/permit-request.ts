import type { ValidContext } from '../context.ts';
import type { PermitRequest } from '../ports.ts';
import type { PermitVerdict } from '../verdict.ts';

/** What the signer is asked to bind into a permit for this call: who, what, its arguments, for how long. */
export function permitRequest(ctx: ValidContext, verdict: PermitVerdict, now: number, ttlMs: number): PermitRequest {
  return {
    principalId: ctx.principalId,
    principalKind: ctx.principalKind,
    action: ctx.actionName,
    args: ctx.params,
    sessionId: ctx.sessionId,
    evaluationId: verdict.evaluationId,
    audience: ctx.audience,
    issuedAt: now,
    expiresAt: now + ttlMs,
    ...(verdict.approval ? { approvalId: verdict.approval.id } : {}),
  };
}
