import type { ApprovalDecision, StoredApproval } from './types.ts';

/**
 * The state machine of one request, as plain functions over a stored record (the in-memory store
 * runs them; the Redis store's Lua scripts are the same steps). Every time is the gate's clock.
 *
 *   pending ──grant × quorum──▶ granted ──last use──▶ used
 *      │  └──────one deny─────▶ denied
 *      └──timeout──▶ expired ◀──grant_ttl── granted
 */

/** Marks a request whose time ran out (pending, or granted with uses left) expired; true when it did now. */
export function expireIfDue(r: StoredApproval, now: number): boolean {
  if ((r.status === 'pending' || r.status === 'granted') && now >= r.expiresAt) {
    r.status = 'expired';
    return true;
  }
  return false;
}

/** Whether the request still answers for its call: a waiting, denied or usable granted one. */
export function isLive(r: StoredApproval, now: number): boolean {
  if (now >= r.expiresAt) return false;
  return r.status === 'pending' || r.status === 'denied' || (r.status === 'granted' && r.usesLeft > 0);
}

export type DecideOutcome = 'ok' | 'NOT_PENDING' | 'EXPIRED';

/**
 * Adds one decision to a pending request: a deny denies; a grant counts once per distinct
 * approver, and the quorum-th starts the grant (`grant_ttl` from now, `uses` uses).
 */
export function applyDecision(r: StoredApproval, entry: ApprovalDecision, now: number): DecideOutcome {
  expireIfDue(r, now);
  if (r.status === 'expired') return 'EXPIRED';
  if (r.status !== 'pending') return 'NOT_PENDING';
  r.decisions.push(entry);
  if (entry.decision === 'deny') {
    r.status = 'denied';
    return 'ok';
  }
  const grantors = new Set(r.decisions.filter((d) => d.decision === 'grant').map((d) => d.approver.id));
  if (grantors.size >= r.rule.quorum) {
    r.status = 'granted';
    r.expiresAt = now + r.rule.grantTtlMs;
    r.usesLeft = r.rule.uses;
  }
  return 'ok';
}

/** Takes one use of a live grant; the last one leaves it `used`. */
export function takeUse(r: StoredApproval, now: number): boolean {
  if (r.status !== 'granted' || r.usesLeft <= 0 || now >= r.expiresAt) return false;
  r.usesLeft--;
  if (r.usesLeft === 0) r.status = 'used';
  return true;
}

/** Gives back a use taken by a call refused later on; a grant that lapsed meanwhile stays lapsed. */
export function giveUse(r: StoredApproval, now: number): boolean {
  if ((r.status !== 'used' && r.status !== 'granted') || r.usesLeft >= r.rule.uses) return false;
  r.usesLeft++;
  r.status = now >= r.expiresAt ? 'expired' : 'granted';
  return true;
}
