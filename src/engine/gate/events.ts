import type { ActionContext } from '../context.ts';
import type { AuditSink, GateEvent, VerdictEvent } from '../ports.ts';
import type { RefuseVerdict, Verdict } from '../verdict.ts';
import { refuse } from './decision.ts';
import { StoreFailure } from './store-calls.ts';

/** Where the gate reports what it cannot act on (a failed refund, an unreadable bus message). */
export type Warn = (message: string) => void;

/**
 * The audit event for a verdict. `validated` is false for a context that failed validation: it
 * may be hostile (throwing getters, proxies), so only its identifying strings are read, safely.
 */
export function verdictEvent(
  verdict: Verdict,
  ctx: ActionContext | unknown,
  validated: boolean,
  now: number,
  traceId?: string,
): VerdictEvent {
  const c = validated ? (ctx as Partial<ActionContext>) : safeSummary(ctx);
  const shown = verdict.kind === 'permit' && verdict.observed ? verdict.observed : verdict;
  const event: VerdictEvent = {
    type: 'verdict',
    time: now,
    evaluationId: verdict.evaluationId,
    principal: typeof c.principalId === 'string' ? c.principalId : '(invalid)',
    principalKind: typeof c.principalKind === 'string' ? c.principalKind : undefined,
    action: typeof c.actionName === 'string' ? c.actionName : undefined,
    verdict: shown.kind,
    args: validated ? (c.params ?? {}) : null,
  };
  if (typeof c.resource === 'string') event.resource = c.resource;
  if (typeof c.sessionId === 'string') event.session = c.sessionId;
  if (typeof c.callId === 'string') event.callId = c.callId;
  if (shown.kind === 'refuse')
    Object.assign(event, { code: shown.code, evaluator: shown.evaluator, reason: shown.reason, policy: shown.policy });
  if (shown.kind === 'invalidate') Object.assign(event, { code: 'SESSION_INVALID', evaluator: shown.evaluator, reason: shown.reason });
  if (shown.kind === 'permit' && shown.policy !== undefined) event.policy = shown.policy;
  if (verdict.kind === 'permit' && verdict.permitId !== undefined) event.permit = verdict.permitId;
  if (verdict.kind === 'permit' && verdict.observed) event.observed = true;
  if (shown.kind !== 'invalidate' && shown.approval !== undefined) event.approval = shown.approval.id;
  if (traceId !== undefined) event.traceId = traceId;
  return event;
}

/** The identifying strings of an unvalidated context, each read under try/catch. */
export function safeSummary(input: unknown): Partial<ActionContext> {
  const out: Record<string, string> = {};
  for (const key of ['principalId', 'principalKind', 'actionName', 'sessionId', 'callId', 'resource']) {
    try {
      const value = (input as Record<string, unknown>)[key];
      if (typeof value === 'string') out[key] = value.slice(0, 256);
    } catch {
      // unreadable: leave it out
    }
  }
  return out as Partial<ActionContext>;
}

/** An evaluation that threw: a store failure is STORE_UNAVAILABLE, anything else a bug reported and refused. */
export function failureVerdict(err: unknown, evaluationId: string, warn: Warn): RefuseVerdict {
  if (err instanceof StoreFailure) return refuse(evaluationId, 'STORE_UNAVAILABLE', 'store', `state store unavailable: ${err.message}`);
  warn(`evaluation failed: ${(err as Error)?.stack ?? String(err)}`);
  return refuse(evaluationId, 'INVALID_CONTEXT', 'gate', 'the call could not be evaluated');
}

/** Best-effort record of a non-verdict event: a sink that throws must not make reload or invalidate throw. */
export function recordEvent(audit: AuditSink | undefined, event: GateEvent, warn: Warn): void {
  if (!audit) return;
  const failed = (err: unknown) => warn(`audit append failed: ${String(err)}`);
  try {
    Promise.resolve(audit.append(event)).catch(failed);
  } catch (err) {
    failed(err);
  }
}
