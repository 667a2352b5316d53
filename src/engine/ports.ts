import type { ApprovalDecision, ApprovalFilter, ApprovalStatus, StoredApproval } from './approvals/types.ts';
import type { PrincipalKind } from './context.ts';
import type { MaybePromise } from './stores.ts';
import type { InvalidationScope, RefuseCode } from './verdict.ts';

/** What the gate asks a signer for when it permits. crypto's PermitSigner implements this. */
export interface PermitRequest {
  principalId: string;
  principalKind: PrincipalKind;
  action: string;
  /** The call's arguments; the signer binds their canonical-JSON hash. */
  args: unknown;
  sessionId?: string;
  evaluationId: string;
  audience?: string;
  issuedAt: number;
  expiresAt: number;
  /** The approval the call used: the permit's `apr` claim. */
  approvalId?: string;
}

export interface IssuedPermit {
  token: string;
  /** The token's unique id (`jti`). */
  id: string;
}

export interface PermitIssuer {
  issue(request: PermitRequest): Promise<IssuedPermit>;
}

/** Every verdict the gate reaches, as handed to the audit log. */
export interface VerdictEvent {
  type: 'verdict';
  time: number;
  evaluationId: string;
  principal: string;
  principalKind: PrincipalKind | undefined;
  action: string | undefined;
  resource?: string;
  session?: string;
  callId?: string;
  verdict: 'permit' | 'refuse' | 'invalidate';
  code?: RefuseCode;
  evaluator?: string;
  reason?: string;
  policy?: string;
  /** The call's arguments; the audit log hashes them unless told to keep values. */
  args: unknown;
  /** Permit id (`jti`), when signed. */
  permit?: string;
  /** Observe mode: this is what enforcement would have answered; the caller was permitted. */
  observed?: boolean;
  /** The approval request the verdict is about (APPROVAL_REQUIRED / APPROVAL_DENIED), or the grant a permit used. */
  approval?: string;
  /** The OpenTelemetry trace the evaluation was part of (32 lowercase hex digits), so a trace leads to its record. */
  traceId?: string;
}

export interface PolicyReloadEvent {
  type: 'policy_reload';
  time: number;
  ok: boolean;
  policies: number;
  error?: string;
}

export interface InvalidationEvent {
  type: 'invalidation';
  time: number;
  scope: InvalidationScope;
  reason: string;
  /** True when it came from another replica over the bus. */
  remote: boolean;
}

/**
 * What became of a permitted call's result (the audit log's `outcome` record). The MCP proxy
 * writes one per forwarded call; the adapters write one when result screening found something.
 */
export interface OutcomeEvent {
  type: 'outcome';
  time: number;
  evaluationId: string;
  outcome: 'ok' | 'tool_error' | 'upstream_failure';
  durationMs: number;
  /** The action the call was for, for reading the log without joining. */
  action?: string;
  session?: string;
  error?: string;
  /** Where result screening found something (DESIGN §13): never the value. */
  findings?: { screen: string; detector: string; path: string; count: number }[];
  /** The result was withheld (a block-mode screen matched: OUTPUT_BLOCKED). */
  withheld?: true;
}

export type GateEvent = VerdictEvent | PolicyReloadEvent | InvalidationEvent | ApprovalEvent | OutcomeEvent;

/** Where the gate records its events. audit's AuditLog implements this. */
export interface AuditSink {
  append(event: GateEvent): Promise<unknown>;
}

// ---------------------------------------------------------------------------------------------
// Approvals (DESIGN §11)

/**
 * What `ApprovalStore.open` found for a call: `created` (nothing live, `fresh` stored), `pending`
 * or `denied` (a live request), `used` (a live grant: one use taken for this call), and when only
 * looking (no `fresh`, observe mode) `granted` (a usable grant, untouched) or `none`.
 */
export type ApprovalOpenOutcome = 'created' | 'pending' | 'denied' | 'used' | 'granted' | 'none';

export interface ApprovalOpenResult {
  outcome: ApprovalOpenOutcome;
  /** The request that answered (absent for `none`). */
  id?: string;
  expiresAt?: number;
  /** `used` / `granted`: uses of the grant left (after the one taken). */
  usesLeft?: number;
  /** A request for this call found past its time by this call, and marked expired now (reported once). */
  expired?: string;
}

export interface ApprovalLookup {
  request: StoredApproval;
  /** This lookup found it past its time and marked it expired (reported once). */
  expired: boolean;
}

export type ApprovalDecideResult =
  | { ok: true; request: StoredApproval }
  | { ok: false; code: 'NOT_FOUND' | 'NOT_PENDING' | 'EXPIRED'; expired?: boolean };

/**
 * Where approval requests live; shared by every replica that must see the same requests
 * (RedisApprovalStore). Each method is atomic; times are the gate's clock. A store that throws or
 * rejects makes the gate refuse STORE_UNAVAILABLE, never permit.
 */
export interface ApprovalStore {
  /**
   * For the call bound to `key`: a live grant gives up one use (`used`); a live pending or denied
   * request answers as it is; with none live, `fresh` is stored under `key` (`created`). Without
   * `fresh` nothing is changed but expiry (observe mode looks only).
   */
  open(key: string, now: number, fresh?: StoredApproval): MaybePromise<ApprovalOpenResult>;
  /** Gives back one use taken by `open` (the call was refused later); false when there was none to give. */
  giveBack(id: string, now: number): MaybePromise<boolean>;
  get(id: string, now: number): MaybePromise<ApprovalLookup | undefined>;
  /** Newest first. */
  list(filter: ApprovalFilter, now: number): MaybePromise<ApprovalLookup[]>;
  /** Adds a decision (see approvals/lifecycle.ts); eligibility is the gate's to check before. */
  decide(id: string, decision: ApprovalDecision, now: number): MaybePromise<ApprovalDecideResult>;
  /** Told the id of every request decided (on any replica, where the store can tell); returns unsubscribe. */
  subscribe?(listener: (id: string) => void): () => void;
  close?(): MaybePromise<void>;
}

/** Every request, decision, use, given-back use and expiry, as handed to the audit log. */
export interface ApprovalEvent {
  type: 'approval';
  time: number;
  event: 'requested' | 'granted' | 'denied' | 'used' | 'returned' | 'expired';
  /** The request's id. */
  approval: string;
  /** The request's status after the event. */
  status: ApprovalStatus;
  policy: string;
  principal: string;
  principalKind: PrincipalKind;
  action: string;
  resource?: string;
  audience?: string;
  session?: string;
  /** The arguments' hash (the permit's `args` claim); values stay with the verdict records. */
  args: string;
  /** The evaluation that made or used the request. */
  evaluationId?: string;
  /** Decisions: who decided, and their note. */
  approver?: string;
  approverKind?: PrincipalKind;
  approverRoles?: string[];
  note?: string;
  expiresAt?: number;
}
