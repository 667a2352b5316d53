import { outputBlocked, recordedFindings, type ScreenFinding, type ScreenResult } from '../engine/screen/screen-output.ts';
import type { OutputBlockedVerdict } from '../engine/verdict.ts';
import { warningSink } from '../engine/warnings.ts';
import { ToolCallRefused, type AdapterOptions, type GateDecision, type GateLike } from './shared.ts';

/**
 * Result screening in the adapters (DESIGN §13): what a permitted tool returned is screened with
 * the gate's `[[screen]]` blocks for the call's action before the framework hands it to the model.
 * No framework imports here; each adapter decides how a withheld result reaches its model.
 */

/** What `onScreen` is told when screening found something: where, never the value. */
export interface ScreenReport {
  toolName: string;
  actionName: string;
  callId: string | undefined;
  /** The evaluation that permitted the call (the outcome record's `evaluationId`). */
  evaluationId: string;
  findings: readonly ScreenFinding[];
  /** Set when a block-mode screen withheld the result: the refusal the model was given instead. */
  withheld?: OutputBlockedVerdict;
}

export interface ScreenedToolOutput<T> {
  /** The output to hand on: redacted where a redact-mode screen matched, else the very same value. */
  output: T;
  /** The result must not reach the model: give it this refusal instead (OUTPUT_BLOCKED). */
  withheld?: OutputBlockedVerdict;
}

/** The call whose output is screened: a permitted decision, or what an adapter knows of the call. */
export type ScreenTarget = Pick<GateDecision, 'toolName' | 'actionName' | 'callId'> & { verdict: { evaluationId: string } };

/**
 * Screens one permitted call's output. Synchronous, and with no `[[screen]]` for the action (or a
 * gate-shaped object without `screen`) it hands the output back after one lookup. When something
 * is found, the gate's audit log gets an `outcome` record with the findings (never the values) and
 * `onScreen` is told. Never throws: a `screen` that throws withholds the result (fail closed).
 */
export function screenToolOutput<T, R>(
  gate: GateLike,
  opts: AdapterOptions<R>,
  decision: ScreenTarget,
  output: T,
  startedAt: number,
  outcome: 'ok' | 'tool_error' = 'ok',
): ScreenedToolOutput<T> {
  if (typeof gate.screen !== 'function') return { output };
  const evaluationId = decision.verdict.evaluationId;
  let screened: ScreenResult<T>;
  try {
    screened = gate.screen({ actionName: decision.actionName }, output);
  } catch (err) {
    warningSink(opts.onWarning)(`the result of '${decision.toolName}' could not be screened: ${(err as Error)?.message ?? String(err)}`);
    const withheld: OutputBlockedVerdict = {
      kind: 'refuse',
      evaluationId,
      code: 'OUTPUT_BLOCKED',
      evaluator: 'screen',
      reason: "the tool's result was withheld: it could not be screened for secrets",
    };
    return { output, withheld };
  }
  if (screened.findings.length === 0 && screened.blocked === undefined) return { output: screened.output };
  const withheld = screened.blocked ? outputBlocked(evaluationId, screened.blocked) : undefined;
  record(gate, opts, decision, screened.findings, withheld, performance.now() - startedAt, outcome);
  return withheld ? { output, withheld } : { output: screened.output };
}

function record<R>(
  gate: GateLike,
  opts: AdapterOptions<R>,
  decision: ScreenTarget,
  findings: readonly ScreenFinding[],
  withheld: OutputBlockedVerdict | undefined,
  durationMs: number,
  outcome: 'ok' | 'tool_error',
): void {
  const warn = warningSink(opts.onWarning);
  const evaluationId = decision.verdict.evaluationId;
  try {
    gate.recordOutcome?.({
      evaluationId,
      action: decision.actionName,
      outcome,
      durationMs: Math.max(0, Math.round(durationMs * 1000) / 1000),
      findings: recordedFindings(findings),
      ...(withheld ? { withheld: true as const } : {}),
    });
  } catch (err) {
    warn(`could not record the screening of '${decision.toolName}': ${(err as Error)?.message ?? String(err)}`);
  }
  if (!opts.onScreen) return;
  const report: ScreenReport = {
    toolName: decision.toolName,
    actionName: decision.actionName,
    callId: decision.callId,
    evaluationId,
    findings,
    ...(withheld ? { withheld } : {}),
  };
  const failed = (err: unknown) => warn(`onScreen callback failed: ${(err as Error)?.message ?? String(err)}`);
  try {
    // Told synchronously; an async observer's failure is a warning, never the model's business.
    Promise.resolve(opts.onScreen(report)).catch(failed);
  } catch (err) {
    failed(err);
  }
}

/**
 * A permitted tool's thrown error, screened: frameworks hand its message to the model. The same
 * error when nothing was found; an Error of the same name with the redacted message (no `cause`,
 * no stack holding the original text); or `ToolCallRefused` (OUTPUT_BLOCKED) when withheld.
 */
export function screenToolError<R>(
  gate: GateLike,
  opts: AdapterOptions<R>,
  decision: ScreenTarget,
  err: unknown,
  startedAt: number,
): unknown {
  if (!(err instanceof Error) || err instanceof ToolCallRefused) return err;
  const fields = { message: err.message };
  const screened = screenToolOutput(gate, opts, decision, fields, startedAt, 'tool_error');
  if (screened.withheld) return new ToolCallRefused(screened.withheld);
  if (screened.output === fields) return err;
  const redacted = new Error(screened.output.message);
  redacted.name = err.name;
  return redacted;
}
