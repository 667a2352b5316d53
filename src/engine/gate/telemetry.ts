import type { GateTelemetry } from '../../telemetry/gate-telemetry.ts';
import type { Context as TraceContext } from '../../telemetry/otel-shapes.ts';
import type { ActionContext } from '../context.ts';
import type { MaybePromise } from '../stores.ts';
import type { Verdict } from '../verdict.ts';
import { safeSummary } from './events.ts';

/**
 * One evaluation inside its `kavach.evaluate` span: `run` gets the trace id the audit record
 * carries. A throw (a bug: evaluate never throws) is recorded on the span and passed on.
 */
export async function traceEvaluation(
  telemetry: GateTelemetry,
  input: ActionContext,
  parent: TraceContext | undefined,
  run: (traceId: string | undefined) => MaybePromise<Verdict>,
): Promise<Verdict> {
  const trace = telemetry.startEvaluation(parent);
  let verdict: Verdict;
  try {
    verdict = await run(trace.traceId);
  } catch (err) {
    trace.fail(err);
    throw err;
  }
  trace.end(verdict, safeSummary(input));
  return verdict;
}

/**
 * Runs `work` and reports how long it took, and whether it succeeded, as the `step` duration
 * (signing a permit, committing an audit record). Without telemetry nothing is measured.
 */
export async function timed<T>(telemetry: GateTelemetry | undefined, step: 'signed' | 'committed', work: () => Promise<T>): Promise<T> {
  if (telemetry === undefined) return work();
  const started = performance.now();
  let result: T;
  try {
    result = await work();
  } catch (err) {
    telemetry[step]((performance.now() - started) / 1000, false);
    throw err;
  }
  telemetry[step]((performance.now() - started) / 1000, true);
  return result;
}
