import type { PrincipalKind } from './context.ts';
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

export type GateEvent = VerdictEvent | PolicyReloadEvent | InvalidationEvent;

/** Where the gate records its events. audit's AuditLog implements this. */
export interface AuditSink {
  append(event: GateEvent): Promise<unknown>;
}
