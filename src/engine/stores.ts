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
  /** `repeated`: `chargeId` was already charged, so nothing was charged now (and nothing may be refunded). */
  | { admitted: true; repeated?: boolean }
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

/** A sliding-window log: entries oldest first from `head`, with their running sum and ids. */
interface Window {
  entries: WindowEntry[];
  head: number;
  sum: number;
  ids: Map<string, number>;
}

export class InMemoryRateStore implements RateStore {
  private readonly windows = new Map<string, Window>();
  private chargesSinceSweep = 0;

  checkAndCharge(charges: readonly RateCharge[], chargeId: string, now: number): ChargeResult {
    const windows: Window[] = [];
    let alreadyCharged = chargeId !== '';
    for (const charge of charges) {
      const w = this.live(charge.key, charge.windowMs, now);
      windows.push(w);
      if (alreadyCharged && !w.ids.has(chargeId)) alreadyCharged = false;
    }
    if (alreadyCharged) return { admitted: true, repeated: true };
    for (let i = 0; i < charges.length; i++) {
      const charge = charges[i] as RateCharge;
      const w = windows[i] as Window;
      if (!fits(w.sum, charge.amount, charge.max)) {
        return { admitted: false, index: i, retryAfterMs: retryAfter(w.entries.slice(w.head), w.sum, charge, now) };
      }
    }
    for (let i = 0; i < charges.length; i++) {
      const charge = charges[i] as RateCharge;
      const w = windows[i] as Window;
      w.entries.push({ at: now, amount: charge.amount, id: chargeId });
      w.sum += charge.amount;
      w.ids.set(chargeId, (w.ids.get(chargeId) ?? 0) + 1);
    }
    if (++this.chargesSinceSweep >= 10_000) this.sweep(now);
    return { admitted: true };
  }

  refund(charges: readonly RateCharge[], chargeId: string): void {
    for (const charge of charges) {
      const w = this.windows.get(charge.key);
      if (!w?.ids.has(chargeId)) continue;
      for (let i = w.entries.length - 1; i >= w.head; i--) {
        const e = w.entries[i] as WindowEntry;
        if (e.id !== chargeId) continue;
        w.entries.splice(i, 1);
        w.sum = w.head >= w.entries.length ? 0 : w.sum - e.amount;
        forget(w, chargeId);
        break;
      }
    }
  }

  /** The key's window with everything older than `windowMs` dropped. */
  private live(key: string, windowMs: number, now: number): Window {
    let w = this.windows.get(key);
    if (!w) {
      w = { entries: [], head: 0, sum: 0, ids: new Map() };
      this.windows.set(key, w);
      return w;
    }
    const cutoff = now - windowMs;
    while (w.head < w.entries.length && (w.entries[w.head] as WindowEntry).at <= cutoff) {
      const e = w.entries[w.head++] as WindowEntry;
      w.sum -= e.amount;
      forget(w, e.id);
    }
    // An empty window owes nothing: no float residue of the sums may outlive its entries.
    if (w.head >= w.entries.length) w.sum = 0;
    if (w.head > 1024 && w.head * 2 > w.entries.length) {
      w.entries = w.entries.slice(w.head);
      w.head = 0;
    }
    return w;
  }

  /** Forget keys whose windows emptied, so idle principals do not hold memory forever. */
  private sweep(now: number): void {
    this.chargesSinceSweep = 0;
    for (const [key, w] of this.windows) {
      const newest = w.entries[w.entries.length - 1];
      if (!newest || w.head >= w.entries.length || newest.at < now - 366 * 86_400_000) this.windows.delete(key);
    }
  }
}

function forget(w: Window, id: string): void {
  const n = (w.ids.get(id) ?? 1) - 1;
  if (n <= 0) w.ids.delete(id);
  else w.ids.set(id, n);
}

/**
 * Sums of decimal amounts are off by float ulps (0.1 + 0.2 > 0.3): a charge that overshoots by
 * less than a trillionth of the limit still fits, so a budget of 0.3 takes 0.1 + 0.2.
 */
function fits(used: number, amount: number, max: number): boolean {
  return used + amount <= max + Math.abs(max) * 1e-12;
}

/** How long until enough of the window expires for `charge` to fit; undefined if it never can. */
export function retryAfter(entries: readonly WindowEntry[], used: number, charge: RateCharge, now: number): number | undefined {
  if (charge.amount > charge.max) return undefined;
  let freed = 0;
  for (const e of entries) {
    freed += e.amount;
    if (fits(used - freed, charge.amount, charge.max)) return Math.max(1, e.at + charge.windowMs - now);
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
  /** Calls attempted in the last behaviour window (`behaviourWindowMs`), this one included. */
  recentCalls: number;
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
  /**
   * Keep at least this many recent call times (default MAX_RECENT): `recentCalls` must be able to
   * exceed the behaviour detector's highest threshold, whatever the operator set it to.
   */
  recentLimit?: number;
}

export type ObserveResult = { invalid: true; reason: string } | { invalid: false; session: SessionState };

export interface SessionStore {
  /**
   * One round trip per call: answers whether the session is invalidated (by session, principal or
   * global scope); if not, records this call (origins on first sight) and returns the state after.
   * A call by a principal other than the session's is not recorded (the gate refuses it).
   */
  observe(obs: SessionObservation): MaybePromise<ObserveResult>;
  /** Remembers an invalidation. Principal and global scopes cut off sessions started before `now`. */
  invalidate(scope: InvalidationScope, reason: string, now: number): MaybePromise<void>;
  close?(): MaybePromise<void>;
}

/** Call times remembered per session when the observation names no `recentLimit`. */
export const MAX_RECENT = 1_000;

/** The observation's recentLimit, checked: a whole number of at least 1 (else the store is misused). */
export function recentLimitOf(obs: SessionObservation): number {
  const limit = obs.recentLimit ?? MAX_RECENT;
  if (typeof limit !== 'number' || !(limit >= 1) || !Number.isFinite(limit))
    throw new TypeError('recentLimit must be a finite number of at least 1');
  return Math.floor(limit);
}

export interface SessionStoreOptions {
  /** Sessions idle this long are forgotten (default 7 days). Invalidations are kept as long. */
  idleTtlMs?: number;
}

interface StoredSession {
  state: SessionState;
  /** Call times inside the behaviour window, oldest first from `head`. */
  times: number[];
  head: number;
  lastSeen: number;
}

export class InMemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, StoredSession>();
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
    let stored = this.sessions.get(obs.sessionId);
    if (stored && obs.now - stored.lastSeen > this.idleTtlMs) {
      this.sessions.delete(obs.sessionId);
      stored = undefined;
    }
    const startedAt = stored?.state.startedAt ?? obs.now;
    const cutoff = this.principalCutoffs.get(obs.principalId);
    if (cutoff && startedAt <= cutoff.at) return { invalid: true, reason: cutoff.reason };
    if (this.globalCutoff && startedAt <= this.globalCutoff.at) return { invalid: true, reason: this.globalCutoff.reason };
    if (!stored) {
      const state: SessionState = { principalId: obs.principalId, startedAt: obs.now, actionCount: 0, recentCalls: 0 };
      if (obs.ip !== undefined) state.originIp = obs.ip;
      if (obs.device !== undefined) state.originDevice = obs.device;
      if (obs.geo !== undefined) state.originGeo = obs.geo;
      stored = { state, times: [], head: 0, lastSeen: obs.now };
      this.sessions.set(obs.sessionId, stored);
    }
    // Another principal naming this session is refused by the gate; its calls must not count
    // against the owner's session (pushing it into behaviour drift or its action cap).
    if (stored.state.principalId !== obs.principalId) return { invalid: false, session: { ...stored.state } };
    const since = obs.now - obs.behaviourWindowMs;
    while (stored.head < stored.times.length && (stored.times[stored.head] as number) <= since) stored.head++;
    const limit = recentLimitOf(obs);
    if (stored.times.length - stored.head >= limit) stored.head = stored.times.length - limit + 1;
    if (stored.head > 256 && stored.head * 2 > stored.times.length) {
      stored.times = stored.times.slice(stored.head);
      stored.head = 0;
    }
    stored.times.push(obs.now);
    stored.lastSeen = obs.now;
    stored.state.actionCount++;
    stored.state.recentCalls = stored.times.length - stored.head;
    if (++this.observations % 10_000 === 0) this.sweep(obs.now);
    // Callers get their own copy: nothing they do can change the store.
    return { invalid: false, session: { ...stored.state } };
  }

  invalidate(scope: InvalidationScope, reason: string, now: number): void {
    const mark = { reason, at: now };
    if (scope.type === 'session') {
      this.invalidSessions.set(scope.sessionId, mark);
      this.sessions.delete(scope.sessionId);
    } else if (scope.type === 'principal') {
      // A cutoff only moves forward: a late, older message from another replica must not shorten it.
      const prev = this.principalCutoffs.get(scope.principalId);
      if (!prev || prev.at <= now) this.principalCutoffs.set(scope.principalId, mark);
    } else if (!this.globalCutoff || this.globalCutoff.at <= now) {
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
