import { PRINCIPAL_KINDS, type Principal } from '../context.ts';
import type { ApprovalEvent, ApprovalLookup, ApprovalStore, AuditSink } from '../ports.ts';
import { StoreUnavailableError } from '../stores.ts';
import { mayDecide, publicView } from './binding.ts';
import { approvalEvent, approverOf } from './events.ts';
import {
  APPROVAL_STATUSES,
  ApprovalError,
  type ApprovalDecision,
  type ApprovalFilter,
  type ApprovalRequest,
  type ApprovalDecisionInput,
  type StoredApproval,
  type ApprovalWaitOptions,
} from './types.ts';

/** How often `wait` looks again when no change notice came (pub/sub is at-most-once), at most. */
const POLL_MS = 500;
const ID_MAX = 512;
const NOTE_MAX = 4096;

export interface ApprovalsDeps {
  store: ApprovalStore;
  clock: () => number;
  audit: AuditSink | undefined;
  /** Best-effort record of an event (requests, expiries): failures are warned about, not thrown. */
  record: (event: ApprovalEvent) => void;
  warn: (message: string) => void;
}

/** `gate.approvals`: the requests waiting for people, and the way people answer them (DESIGN §11). */
export class Approvals {
  constructor(private readonly deps: ApprovalsDeps) {}

  /** Newest first; `status` and `principalId` narrow the list. Requests found lapsed are marked expired. */
  async list(filter: ApprovalFilter = {}): Promise<ApprovalRequest[]> {
    if (filter === null || typeof filter !== 'object') throw new TypeError('filter must be an object');
    if (filter.status !== undefined && !APPROVAL_STATUSES.includes(filter.status))
      throw new TypeError(`status must be one of ${APPROVAL_STATUSES.join(', ')}`);
    if (filter.principalId !== undefined && typeof filter.principalId !== 'string') throw new TypeError('principalId must be a string');
    const clean: ApprovalFilter = {};
    if (filter.status !== undefined) clean.status = filter.status;
    if (filter.principalId !== undefined) clean.principalId = filter.principalId;
    const now = this.deps.clock();
    const found = await this.deps.store.list(clean, now);
    return found.map((lookup) => this.seen(lookup, now));
  }

  async get(id: string): Promise<ApprovalRequest | undefined> {
    if (typeof id !== 'string' || id.length === 0 || id.length > ID_MAX) return undefined;
    const now = this.deps.clock();
    const found = await this.deps.store.get(id, now);
    return found ? this.seen(found, now) : undefined;
  }

  /**
   * One approver's answer. Throws ApprovalError: NOT_FOUND, SELF_APPROVAL (nobody decides their own
   * call), NOT_AN_APPROVER (not listed in the policy's `approvers`), EXPIRED, NOT_PENDING.
   */
  async decide(id: string, input: ApprovalDecisionInput): Promise<ApprovalRequest> {
    const decision = checkDecision(input);
    const now = this.deps.clock();
    const found = typeof id === 'string' && id.length > 0 && id.length <= ID_MAX ? await this.deps.store.get(id, now) : undefined;
    if (!found) throw new ApprovalError('NOT_FOUND', String(id), `no approval request ${JSON.stringify(String(id).slice(0, 80))}`);
    const request = this.seenStored(found, now);
    if (decision.approver.id === request.principal.id) {
      throw new ApprovalError('SELF_APPROVAL', id, `${request.principal.id} cannot decide their own call`);
    }
    if (!mayDecide(request.rule.approvers, decision.approver)) {
      throw new ApprovalError(
        'NOT_AN_APPROVER',
        id,
        `${decision.approver.id} is not among the approvers of '${request.policy}' (${request.rule.approvers.join(', ')})`,
      );
    }
    const entry: ApprovalDecision = { ...decision, at: now };
    const result = await this.deps.store.decide(id, entry, now);
    if (!result.ok) {
      if (result.expired) this.deps.record(approvalEvent(request, 'expired', 'expired', now, { expiresAt: request.expiresAt }));
      if (result.code === 'NOT_FOUND') throw new ApprovalError('NOT_FOUND', id, `no approval request ${JSON.stringify(id)}`);
      if (result.code === 'EXPIRED')
        throw new ApprovalError('EXPIRED', id, `approval request ${id} expired at ${new Date(request.expiresAt).toISOString()}`);
      throw new ApprovalError('NOT_PENDING', id, `approval request ${id} is no longer pending`);
    }
    const after = result.request;
    const event = approvalEvent(after, decision.decision === 'grant' ? 'granted' : 'denied', after.status, now, {
      decision: entry,
      expiresAt: after.expiresAt,
    });
    if (this.deps.audit) {
      try {
        await this.deps.audit.append(event);
      } catch (err) {
        // The decision is stored (the store is the source of truth); whoever decided must hear it is unrecorded.
        this.deps.warn(`audit append failed: ${String(err)}`);
        throw new StoreUnavailableError(
          `the decision on ${id} was taken but the audit log could not record it: ${(err as Error)?.message ?? String(err)}`,
        );
      }
    }
    return publicView(after);
  }

  /**
   * Resolves once the request is no longer pending (decided or expired), or with the request as
   * it stands when `timeoutMs` passes. Rejects with the signal's reason when aborted.
   */
  async wait(id: string, opts: ApprovalWaitOptions = {}): Promise<ApprovalRequest> {
    const { signal, timeoutMs } = opts;
    if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new TypeError('timeoutMs must be a finite number >= 0');
    }
    signal?.throwIfAborted();
    // The caller's patience is real time; expiry is the gate's clock.
    const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
    let changed = false;
    let wake: (() => void) | undefined;
    const unsubscribe = this.deps.store.subscribe?.((decided) => {
      if (decided !== id) return;
      changed = true;
      wake?.();
    });
    try {
      for (;;) {
        changed = false;
        const request = await this.get(id);
        if (!request) throw new ApprovalError('NOT_FOUND', String(id), `no approval request ${JSON.stringify(String(id).slice(0, 80))}`);
        if (request.status !== 'pending') return request;
        const left = deadline - Date.now();
        if (left <= 0) return request;
        if (changed) continue;
        const untilExpiry = request.expiresAt - this.deps.clock();
        await sleep(Math.max(1, Math.min(left, POLL_MS, untilExpiry)), signal, (w) => (wake = w));
        wake = undefined;
      }
    } finally {
      unsubscribe?.();
    }
  }

  /** A lookup as the API shows it; an expiry it caused is recorded once. */
  private seen(lookup: ApprovalLookup, now: number): ApprovalRequest {
    return publicView(this.seenStored(lookup, now));
  }

  private seenStored(lookup: ApprovalLookup, now: number): StoredApproval {
    const r = lookup.request;
    if (
      r === null ||
      typeof r !== 'object' ||
      typeof r.id !== 'string' ||
      !APPROVAL_STATUSES.includes(r.status) ||
      typeof r.rule !== 'object'
    ) {
      throw new StoreUnavailableError('the approval store gave a malformed answer');
    }
    if (lookup.expired) this.deps.record(approvalEvent(r, 'expired', r.status, now, { expiresAt: r.expiresAt }));
    return r;
  }
}

/** Waits `ms`, or until woken, or rejects when the signal aborts. */
function sleep(ms: number, signal: AbortSignal | undefined, setWake: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      resolve();
    };
    const aborted = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', aborted, { once: true });
    setWake(done);
  });
}

function checkDecision(input: ApprovalDecisionInput): Omit<ApprovalDecision, 'at'> {
  if (input === null || typeof input !== 'object') throw new TypeError('decide needs { approver, decision }');
  const { approver, decision, note } = input;
  if (decision !== 'grant' && decision !== 'deny') throw new TypeError("decision must be 'grant' or 'deny'");
  if (approver === null || typeof approver !== 'object') throw new TypeError('approver must be a principal { id, kind, roles? }');
  if (typeof approver.id !== 'string' || approver.id.length === 0 || approver.id.length > ID_MAX)
    throw new TypeError('approver.id must be a non-empty string');
  if (!(PRINCIPAL_KINDS as readonly string[]).includes(approver.kind))
    throw new TypeError(`approver.kind must be one of ${PRINCIPAL_KINDS.join(', ')}`);
  if (approver.roles !== undefined && (!Array.isArray(approver.roles) || approver.roles.some((r) => typeof r !== 'string'))) {
    throw new TypeError('approver.roles must be an array of strings');
  }
  if (note !== undefined && (typeof note !== 'string' || note.length > NOTE_MAX))
    throw new TypeError(`note must be a string of at most ${NOTE_MAX} characters`);
  const out: Omit<ApprovalDecision, 'at'> = { approver: approverOf(approver as Principal), decision };
  if (note !== undefined) out.note = note;
  return out;
}
