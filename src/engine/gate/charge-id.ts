import { hashArgs } from '../canonical-json.ts';
import type { ValidContext } from '../context.ts';

/**
 * The id a charge is recorded under: a callId binds to who, what, on which resource, for which
 * audience, in which session and with which arguments; a call differing in any of them is another call.
 */
export function chargeIdFor(ctx: ValidContext, evaluationId: string): string {
  if (ctx.callId === undefined) return evaluationId;
  return hashArgs({
    c: ctx.callId,
    p: ctx.principalId,
    a: ctx.actionName,
    x: ctx.params,
    r: ctx.resource,
    u: ctx.audience,
    s: ctx.sessionId,
  });
}
