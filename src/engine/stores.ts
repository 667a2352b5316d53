import type { GeoLocation } from './context.ts';
import type { InvalidationScope } from './verdict.ts';

/** Stores may answer synchronously (in memory) or not (Redis); the gate awaits only promises. */
export type MaybePromise<T> = T | Promise<T>;

/** Thrown by (or wrapped around) any store failure: the gate refuses STORE_UNAVAILABLE. */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
}

// ---------------------------------------------------------------------------------------------
// Rate limits and budgets

/** One sliding-window counter to charge: `amount` 1 for a rate limit, the value for a budget. */
export interface RateCharge {
  /** Collision-free key naming the limit and its scope (policy, condition, principal, action...). */
  key: string;
  amount: number;
  max: number;
  windowMs: number;
}

export type ChargeResult =
  | { admitted: true }
  /** `index` of the first charge that does not fit; no retry when it can never fit. */
  | { admitted: false; index: number; retryAfterMs?: number };

export interface RateStore {
  /**
   * Atomically: when every charge fits its window (sum in window + amount <= max), record all of
   * them under `chargeId` and admit; otherwise record nothing. A `chargeId` already recorded under
   * every key is admitted without being charged again (the same call evaluated twice).
   * Must be one round trip for remote stores.
   */
  checkAndCharge(charges: readonly RateCharge[], chargeId: string, now: number): MaybePromise<ChargeResult>;
  /** Takes back what `chargeId` recorded (a later step refused the call). */
  refund(charges: readonly RateCharge[], chargeId: string): MaybePromise<void>;
  close?(): MaybePromise<void>;
}

interface WindowEntry {
  at: number;
  amount: number;
  id: string;
}

export class InMemoryRateStore implements RateStore {
  private readonly windows = new Map<string, WindowEntry[]>();
  private chargesSinceSweep = 0;

  checkAndCharge(charges: readonly RateCharge[], chargeId: string, now: number): ChargeResult {
    const lists: WindowEntry[][] = [];
    let alreadyCharged = chargeId !== '';
    for (const charge of charges) {
      const list = this.live(charge.key, charge.windowMs, now);
      lists.push(list);
      if (alreadyCharged && !list.some((e) => e.id === chargeId)) alreadyCharged = false;
    }
    if (alreadyCharged) return { admitted: true };
    for (let i = 0; i < charges.length; i++) {
      const charge = charges[i] as RateCharge;
      const list = lists[i] as WindowEntry[];
      let used = 0;
      for (const e of list) used += e.amount;
      if (used + charge.amount > charge.max) {
        return { admitted: false, index: i, retryAfterMs: retryAfter(list, used, charge, now) };
      }
    }
    for (let i = 0; i < charges.length; i++) {
      const charge = charges[i] as RateCharge;
      const list = lists[i] as WindowEntry[];
      list.push({ at: now, amount: charge.amount, id: chargeId });
      if (list.length === 1) this.windows.set(charge.key, list);
    }
    if (++this.chargesSinceSweep >= 10_000) this.sweep(now);
    return { admitted: true };
  }

  refund(charges: readonly RateCharge[], chargeId: string): void {
    for (const charge of charges) {
      const list = this.windows.get(charge.key);
      if (!list) continue;
      const at = list.findIndex((e) => e.id === chargeId);
      if (at >= 0) list.splice(at, 1);
    }
  }

  /** Entries still inside the window, oldest first. */
  private live(key: string, windowMs: number, now: number): WindowEntry[] {
    const list = this.windows.get(key);
    if (!list) return [];
    let drop = 0;
    while (drop < list.length && (list[drop] as WindowEntry).at <= now - windowMs) drop++;
    if (drop > 0) list.splice(0, drop);
    return list;
  }

  /** Forget keys whose windows emptied, so idle principals do not hold memory forever. */
  private sweep(now: number): void {
    this.chargesSinceSweep = 0;
    for (const [key, list] of this.windows) {
      const newest = list[list.length - 1];
      if (!newest || newest.at < now - 366 * 86_400_000) this.windows.delete(key);
    }
  }
}

/** How long until enough of the window expires for `charge` to fit; undefined if it never can. */
export function retryAfter(entries: readonly WindowEntry[], used: number, charge: RateCharge, now: number): number | undefined {
  if (charge.amount > charge.max) return undefined;
  let freed = 0;
  for (const e of entries) {
    freed += e.amount;
    if (used - freed + charge.amount <= charge.max) return Math.max(1, e.at + charge.windowMs - now);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Sessions

export interface SessionState {
  principalId: string;
  startedAt: number;
  originIp?: string;
  originDevice?: string;
  originGeo?: GeoLocation;
  /** Calls attempted in the session, this one included. */
  actionCount: number;
  /** Times of the calls attempted in the last behaviour window, this one included. */
  recent: number[];
}

export interface SessionObservation {
  principalId: string;
  sessionId: string;
  ip?: string;
  device?: string;
  geo?: GeoLocation;
  now: number;
  /** How far back `recent` reaches. */
  behaviourWindowMs: number;
}

export type ObserveResult =
  | { invalid: true; reason: string }
  | { invalid: false; session: SessionState };

export interface SessionStore {
  /**
   * One round trip per call: answers whether the session is invalidated (by session, principal or
   * global scope); if not, records this call (origins on first sight) and returns the state after.
   */
  observe(obs: SessionObservation): MaybePromise<ObserveResult>;
  /** Remembers an invalidation. Principal and global scopes cut off sessions started before `now`. */
  invalidate(scope: InvalidationScope, reason: string, now: number): MaybePromise<void>;
  close?(): MaybePromise<void>;
}

/** Upper bound on remembered call times per session: enough for any sane per-minute threshold. */
export const MAX_RECENT = 1_000;

export interface SessionStoreOptions {
  /** Sessions idle this long are forgotten (default 7 days). Invalidations are kept as long. */
  idleTtlMs?: number;
}

export class InMemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionState & { lastSeen: number }>();
  private readonly invalidSessions = new Map<string, { reason: string; at: number }>();
  private readonly principalCutoffs = new Map<string, { reason: string; at: number }>();
  private globalCutoff: { reason: string; at: number } | undefined;
  private readonly idleTtlMs: number;
  private observations = 0;

  constructor(opts: SessionStoreOptions = {}) {
    this.idleTtlMs = opts.idleTtlMs ?? 7 * 86_400_000;
  }

  observe(obs: SessionObservation): ObserveResult {
    const bad = this.invalidSessions.get(obs.sessionId);
    if (bad) return { invalid: true, reason: bad.reason };
    let state = this.sessions.get(obs.sessionId);
    if (state && obs.now - state.lastSeen > this.idleTtlMs) {
      this.sessions.delete(obs.sessionId);
      state = undefined;
    }
    const startedAt = state?.startedAt ?? obs.now;
    const cutoff = this.principalCutoffs.get(obs.principalId);
    if (cutoff && startedAt <= cutoff.at) return { invalid: true, reason: cutoff.reason };
    if (this.globalCutoff && startedAt <= this.globalCutoff.at) return { invalid: true, reason: this.globalCutoff.reason };
    if (!state) {
      state = { principalId: obs.principalId, startedAt: obs.now, actionCount: 0, recent: [], lastSeen: obs.now };
      if (obs.ip !== undefined) state.originIp = obs.ip;
      if (obs.device !== undefined) state.originDevice = obs.device;
      if (obs.geo !== undefined) state.originGeo = obs.geo;
      this.sessions.set(obs.sessionId, state);
    }
    state.actionCount++;
    state.lastSeen = obs.now;
    const since = obs.now - obs.behaviourWindowMs;
    let drop = 0;
    while (drop < state.recent.length && (state.recent[drop] as number) <= since) drop++;
    if (state.recent.length - drop >= MAX_RECENT) drop = state.recent.length - MAX_RECENT + 1;
    if (drop > 0) state.recent.splice(0, drop);
    state.recent.push(obs.now);
    if (++this.observations % 10_000 === 0) this.sweep(obs.now);
    const { lastSeen: _lastSeen, ...snapshot } = state;
    return { invalid: false, session: { ...snapshot, recent: state.recent.slice() } };
  }

  invalidate(scope: InvalidationScope, reason: string, now: number): void {
    const mark = { reason, at: now };
    if (scope.type === 'session') {
      this.invalidSessions.set(scope.sessionId, mark);
      this.sessions.delete(scope.sessionId);
    } else if (scope.type === 'principal') {
      this.principalCutoffs.set(scope.principalId, mark);
    } else {
      this.globalCutoff = mark;
    }
  }

  private sweep(now: number): void {
    for (const [id, s] of this.sessions) if (now - s.lastSeen > this.idleTtlMs) this.sessions.delete(id);
    for (const [id, m] of this.invalidSessions) if (now - m.at > this.idleTtlMs) this.invalidSessions.delete(id);
  }
}

// ---------------------------------------------------------------------------------------------
// Replay (single use of permit ids)

export interface ReplayStore {
  /** True the first time `id` is seen; false after. Remembers it until `expiresAt` (ms). */
  claim(id: string, expiresAt: number, now: number): MaybePromise<boolean>;
  close?(): MaybePromise<void>;
}

export class InMemoryReplayStore implements ReplayStore {
  private readonly seen = new Map<string, number>();
  private claims = 0;

  claim(id: string, expiresAt: number, now: number): boolean {
    const until = this.seen.get(id);
    if (until !== undefined && until > now) return false;
    this.seen.set(id, expiresAt);
    if (++this.claims % 10_000 === 0) {
      for (const [key, exp] of this.seen) if (exp <= now) this.seen.delete(key);
    }
    return true;
  }
}
