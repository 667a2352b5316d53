import type { Context as TraceContext } from '../../telemetry/otel-shapes.ts';
import type { TelemetryOptions } from '../../telemetry/gate-telemetry.ts';
import type { DriftOptions } from '../drift.ts';
import type { InvalidationBus } from '../invalidation.ts';
import type { InvariantSpec } from '../invariants.ts';
import type { ApprovalStore, AuditSink, PermitIssuer } from '../ports.ts';
import type { RateStore, ReplayStore, SessionStore } from '../stores.ts';

export interface GateOptions {
  /** Permanent: survive reload. */
  invariants?: InvariantSpec[];
  /** Permits are signed when present. */
  signer?: PermitIssuer;
  /** Every verdict recorded when present. */
  audit?: AuditSink;
  /** Evaluate and record, always permit, with the real verdict in `observed` (only real permits are signed). */
  observeOnly?: boolean;
  drift?: DriftOptions | false;
  stores?: { rate?: RateStore; session?: SessionStore; replay?: ReplayStore; approval?: ApprovalStore };
  bus?: InvalidationBus;
  /** ms since epoch. */
  clock?: () => number;
  /** Default 30 s. */
  permitTtlMs?: number;
  /** What the gate cannot act on but someone should hear of (a failed refund or audit append). Default: stderr. */
  onWarning?: (message: string) => void;
  /** JSON Pointers removed from the arguments an approver is shown (the proxy passes its audit `redact`). */
  approvalRedact?: string[];
  /**
   * OpenTelemetry (DESIGN §12): a `kavach.evaluate` span per call from `tracer`, verdict counts,
   * durations and pending approvals on `meter`. Absent: nothing is loaded and nothing is measured.
   */
  telemetry?: TelemetryOptions;
}

export interface EvaluateOptions {
  /** Observe this call only: report the real verdict, permit anyway, act on nothing. */
  observe?: boolean;
  /** The OpenTelemetry context the `kavach.evaluate` span is a child of (default: the active one). */
  traceContext?: TraceContext;
}
