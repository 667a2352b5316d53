import type { Principal } from '../context.ts';
import { KavachError } from '../errors.ts';
import type { ApprovalRule } from '../policy/approval-table.ts';

/**
 * pending: waiting for decisions; granted: the call may run (`uses` times, until `expiresAt`);
 * denied: refused APPROVAL_DENIED until `expiresAt`; expired: nobody decided in time, or a grant
 * went unused; used: every use of the grant was taken.
 */
export type ApprovalStatus = 'pending' | 'granted' | 'denied' | 'expired' | 'used';

export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ['pending', 'granted', 'denied', 'expired', 'used'];

export interface ApprovalDecision {
  approver: Principal;
  decision: 'grant' | 'deny';
  note?: string;
  /** ms since epoch, by the gate's clock. */
  at: number;
}

/** One request for a human's decision, bound to one exact call (DESIGN §11). */
export interface ApprovalRequest {
  id: string;
  status: ApprovalStatus;
  /** The approve policy that asked. */
  policy: string;
  /** The policy's description, else its name. */
  reason: string;
  principal: Principal;
  action: string;
  resource?: string;
  audience?: string;
  sessionId?: string;
  /** As the permit's `args` claim: SHA-256 of the canonical JSON of the arguments. */
  argsHash: string;
  /** The arguments for the approver's eyes, minus the redacted JSON Pointers (`approvalRedact`). */
  args?: unknown;
  createdAt: number;
  /** Pending or denied: when the request lapses. Granted: when the grant does (`grant_ttl` after it). */
  expiresAt: number;
  decisions: ApprovalDecision[];
}

export interface ApprovalFilter {
  status?: ApprovalStatus;
  principalId?: string;
}

export interface ApprovalDecisionInput {
  approver: Principal;
  decision: 'grant' | 'deny';
  note?: string;
}

export interface ApprovalWaitOptions {
  signal?: AbortSignal;
  /** Give up after this long and answer with the request as it stands (still pending). */
  timeoutMs?: number;
}

export type ApprovalErrorCode = 'NOT_FOUND' | 'NOT_PENDING' | 'NOT_AN_APPROVER' | 'SELF_APPROVAL' | 'EXPIRED';

/** A decision the gate will not take, with a stable code. */
export class ApprovalError extends KavachError {
  declare readonly code: ApprovalErrorCode;
  /** The request it was about. */
  readonly approvalId: string;
  constructor(code: ApprovalErrorCode, approvalId: string, message: string) {
    super(code, message);
    this.approvalId = approvalId;
  }
}

/** What an approval store keeps: the request, the call it is bound to, and the rule it was made under. */
export interface StoredApproval extends ApprovalRequest {
  /** The binding (see binding.ts): equal exactly for the same call under the same approve policy. */
  key: string;
  rule: ApprovalRule;
  /** Uses of a grant not yet taken. */
  usesLeft: number;
}
