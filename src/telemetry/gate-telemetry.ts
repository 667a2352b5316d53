import type { Attributes, Context, Counter, Histogram, Meter, ObservableGauge, ObservableResult, Span, Tracer } from './otel-shapes.ts';
import type { Verdict } from '../engine/verdict.ts';

/**
 * The gate's telemetry (DESIGN §12) on OpenTelemetry objects the caller passes in, typed by their
 * shapes (otel-shapes.ts): the engine never loads `@opentelemetry/api`, so a gate without
 * telemetry costs nothing and a user without the package installed loses nothing.
 */
export interface TelemetryOptions {
  /** Spans (`kavach.evaluate`); children of the active span, or of `EvaluateOptions.traceContext`. */
  tracer?: Tracer;
  /** Counters, histograms and the approvals gauge. */
  meter?: Meter;
}

/** What the engine calls; undefined (no telemetry) is checked once per call, and that is all it costs. */
export interface GateTelemetry {
  /** Starts one evaluation: its span (when tracing) and its clock. */
  startEvaluation(parent: Context | undefined): EvaluationTrace;
  /** Seconds a permit took to sign. */
  signed(seconds: number, ok: boolean): void;
  /** Seconds a verdict waited for its audit record to be committed. */
  committed(seconds: number, ok: boolean): void;
  /** Reports `kavach.approvals.pending` from `count` on each collection; returns the undo. */
  watchApprovals(count: () => Promise<number>): () => void;
}

export interface EvaluationTrace {
  /** The trace this evaluation belongs to (32 hex digits), when there is one: the audit record carries it. */
  readonly traceId: string | undefined;
  /** Ends the span and records the verdict; `who` is read only here (the context may be hostile). */
  end(verdict: Verdict, who: { principalId?: string; actionName?: string }): void;
  /** The evaluation threw (a bug: evaluate never throws); the span records it. */
  fail(err: unknown): void;
}

// Numeric values of @opentelemetry/api's enums, so nothing of it is loaded at run time.
const SPAN_KIND_INTERNAL = 0;
const STATUS_ERROR = 2;
const INVALID_TRACE_ID = '00000000000000000000000000000000';

/** Seconds buckets for sub-millisecond work that can stretch to a slow store or disk. */
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function gateTelemetry(opts: TelemetryOptions): GateTelemetry | undefined {
  const { tracer, meter } = opts;
  if (tracer === undefined && meter === undefined) return undefined;
  const instruments = meter ? gateInstruments(meter) : undefined;
  return {
    startEvaluation(parent) {
      const started = performance.now();
      const span: Span | undefined = tracer?.startSpan('kavach.evaluate', { kind: SPAN_KIND_INTERNAL }, parent);
      const traceId = span?.spanContext().traceId;
      return {
        traceId: traceId !== undefined && traceId !== INVALID_TRACE_ID ? traceId : undefined,
        end(verdict, who) {
          const attributes = verdictAttributes(verdict, who.actionName);
          instruments?.verdicts.add(1, attributes);
          instruments?.evaluate.record((performance.now() - started) / 1000, attributes);
          if (!span) return;
          span.setAttributes(attributes);
          span.setAttribute('kavach.evaluation_id', verdict.evaluationId);
          if (who.principalId !== undefined) span.setAttribute('kavach.principal.id', who.principalId);
          const shown = verdict.kind === 'permit' && verdict.observed ? verdict.observed : verdict;
          if (shown.kind === 'refuse' && shown.policy !== undefined) span.setAttribute('kavach.policy', shown.policy);
          if (shown.kind === 'permit' && shown.policy !== undefined) span.setAttribute('kavach.policy', shown.policy);
          // A refusal is the gate doing its job, not a failed operation: the span's status stays unset.
          span.end();
        },
        fail(err) {
          if (!span) return;
          span.recordException(err instanceof Error ? err : String(err));
          span.setStatus({ code: STATUS_ERROR, message: err instanceof Error ? err.message : String(err) });
          span.setAttribute('error.type', err instanceof Error ? err.constructor.name : '_OTHER');
          span.end();
        },
      };
    },
    signed(seconds, ok) {
      instruments?.sign.record(seconds, ok ? {} : { 'error.type': 'SIGNING_FAILED' });
    },
    committed(seconds, ok) {
      instruments?.commit.record(seconds, ok ? {} : { 'error.type': 'STORE_UNAVAILABLE' });
    },
    watchApprovals(count) {
      const gauge = instruments?.pending;
      if (!gauge) return () => undefined;
      const observe = async (result: ObservableResult): Promise<void> => {
        // A store that cannot answer reports nothing rather than a misleading zero.
        const n = await count().catch(() => undefined);
        if (n !== undefined) result.observe(n);
      };
      gauge.addCallback(observe);
      return () => gauge.removeCallback(observe);
    },
  };
}

interface GateInstruments {
  verdicts: Counter;
  evaluate: Histogram;
  sign: Histogram;
  commit: Histogram;
  pending: ObservableGauge;
}

function gateInstruments(meter: Meter): GateInstruments {
  const seconds = (name: string, description: string): Histogram =>
    meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: FAST_BUCKETS } });
  return {
    verdicts: verdictCounter(meter),
    evaluate: seconds('kavach.evaluate.duration', 'Time to evaluate one call (policy, limits, signing, audit): what the gate adds'),
    sign: seconds('kavach.permit.sign.duration', 'Time to sign one permit'),
    commit: seconds('kavach.audit.commit.duration', 'Time a verdict waited for its audit record to be committed'),
    pending: meter.createObservableGauge('kavach.approvals.pending', { description: 'Approval requests waiting for a person' }),
  };
}

/** `kavach.verdicts`; the proxy counts its own refusals (TOOL_CHANGED...) on the same instrument. */
export function verdictCounter(meter: Meter): Counter {
  return meter.createCounter('kavach.verdicts', { description: 'Verdicts reached, by verdict, code and action' });
}

/**
 * The verdict as span and metric attributes. In observe mode the caller was permitted: `kavach.verdict`
 * says permit, `kavach.observed` is true and `kavach.code` is what enforcement would have refused with.
 */
export function verdictAttributes(verdict: Verdict, action: string | undefined): Attributes {
  const attributes: Attributes = { 'kavach.verdict': verdict.kind };
  const shown = verdict.kind === 'permit' && verdict.observed ? verdict.observed : verdict;
  if (shown.kind === 'refuse') attributes['kavach.code'] = shown.code;
  else if (shown.kind === 'invalidate') attributes['kavach.code'] = 'SESSION_INVALID';
  if (verdict.kind === 'permit' && verdict.observed) attributes['kavach.observed'] = true;
  if (action !== undefined) attributes['kavach.action'] = action;
  return attributes;
}
