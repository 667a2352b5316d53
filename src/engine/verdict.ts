export const REFUSE_CODES = [
  'NO_POLICY_MATCH',
  'POLICY_DENIED',
  'RATE_LIMITED',
  'INVARIANT_VIOLATION',
  'DRIFT_DETECTED',
  'SESSION_INVALID',
  'INVALID_CONTEXT',
  'STORE_UNAVAILABLE',
  'SIGNING_FAILED',
  'APPROVAL_REQUIRED',
  'APPROVAL_DENIED',
] as const;
export type RefuseCode = (typeof REFUSE_CODES)[number];

/**
 * A result withheld after the call was permitted: a block-mode `[[screen]]` matched what the tool
 * returned (DESIGN §13). Not one of the gate's own verdicts (the gate permitted the call, and the
 * refusal keeps that evaluation's id); the proxy and the adapters give it to the model.
 */
export interface OutputBlockedVerdict {
  kind: 'refuse';
  evaluationId: string;
  code: 'OUTPUT_BLOCKED';
  evaluator: 'screen';
  reason: string;
}

/** What an invalidation covers. Sessions are the usual case; principal and global are break-glass. */
export type InvalidationScope = { type: 'session'; sessionId: string } | { type: 'principal'; principalId: string } | { type: 'global' };

export interface PermitVerdict {
  kind: 'permit';
  evaluationId: string;
  /** The signed permit token, when the gate has a signer and is enforcing. */
  permit?: string;
  /** Unique id of the permit (`jti` claim), when signed. */
  permitId?: string;
  /** Observe mode: the verdict enforcement would have given. */
  observed?: Verdict;
  /** The policy that permitted the call. */
  policy?: string;
  /** The approval this call used (an approve policy matched); its permit carries it as `apr`. */
  approval?: { id: string };
}

export interface RefuseVerdict {
  kind: 'refuse';
  evaluationId: string;
  code: RefuseCode;
  /** Which stage decided: policy, rate, drift, invariant, context, session, store, signer. */
  evaluator: string;
  reason: string;
  policy?: string;
  retryAfterMs?: number;
  /** APPROVAL_REQUIRED / APPROVAL_DENIED: the request for this call, and when it stops counting. */
  approval?: { id: string; expiresAt: number };
}

export interface InvalidateVerdict {
  kind: 'invalidate';
  evaluationId: string;
  scope: InvalidationScope;
  evaluator: string;
  reason: string;
}

export type Verdict = PermitVerdict | RefuseVerdict | InvalidateVerdict;
