// The engine's part of the public surface (`kavach`), named one by one: the gate, what it takes
// and answers, its errors, the ports a deployment may implement and their in-memory defaults.
// Internals (context validation and its limits, store helpers) are imported by module path.
export { Gate, type GateOptions } from './gate.ts';
export type { TelemetryOptions } from '../telemetry/gate-telemetry.ts';
export { PRINCIPAL_KINDS, type PrincipalKind, type Principal, type GeoLocation, type ActionContext } from './context.ts';
export {
  REFUSE_CODES,
  type RefuseCode,
  type Verdict,
  type PermitVerdict,
  type RefuseVerdict,
  type InvalidateVerdict,
  type OutputBlockedVerdict,
  type InvalidationScope,
} from './verdict.ts';
export { KavachError, PolicyError, ConfigError, RefusedError, InvalidatedError } from './errors.ts';
export {
  InMemoryRateStore,
  InMemorySessionStore,
  InMemoryReplayStore,
  StoreUnavailableError,
  type RateStore,
  type RateCharge,
  type ChargeResult,
  type SessionStore,
  type SessionStoreOptions,
  type SessionState,
  type SessionObservation,
  type ObserveResult,
  type ReplayStore,
} from './stores.ts';
export { InMemoryBus, type InvalidationBus, type InvalidationMessage } from './invalidation.ts';
export type {
  PermitIssuer,
  PermitRequest,
  IssuedPermit,
  AuditSink,
  GateEvent,
  VerdictEvent,
  PolicyReloadEvent,
  InvalidationEvent,
  OutcomeEvent,
} from './ports.ts';
export { formatRefusal } from './refusal.ts';
export { canonicalJson, hashArgs } from './canonical-json.ts';
export type { InvariantSpec } from './invariants.ts';
export type { DriftOptions } from './drift.ts';
export { parsePolicyDocument, parsePolicyText, type PolicyFormat } from './policy/load.ts';
export type { PolicySetSpec, PolicySpec, ConditionSpec } from './policy/schema.ts';
export { guarded, type GuardedOptions, type GuardedContext } from './guarded.ts';
export {
  ApprovalError,
  type ApprovalStatus,
  type ApprovalRequest,
  type ApprovalDecision,
  type ApprovalFilter,
  type ApprovalErrorCode,
  type ApprovalDecisionInput,
  type ApprovalWaitOptions,
  type StoredApproval,
} from './approvals/types.ts';
export { Approvals } from './approvals/service.ts';
export { InMemoryApprovalStore, type InMemoryApprovalStoreOptions } from './approvals/memory-store.ts';
export type { ApprovalRule } from './policy/approval-table.ts';
export type {
  ApprovalStore,
  ApprovalOpenResult,
  ApprovalOpenOutcome,
  ApprovalLookup,
  ApprovalDecideResult,
  ApprovalEvent,
} from './ports.ts';
export {
  screenOutput,
  describeWithheld,
  scanToolDefinition,
  escapeText,
  DETECTOR_NAMES,
  SCREEN_MODES,
  TOOL_FINDING_KINDS,
  type ScreenResult,
  type ScreenFinding,
  type ScreenBlock,
  type ScreenMode,
  type ScreenSpec,
  type ToolFinding,
  type ToolFindingKind,
} from './screen/index.ts';
