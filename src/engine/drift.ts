import type { GeoLocation, ValidContext } from './context.ts';
import { parseDuration } from './duration.ts';
import { MAX_RECENT, type SessionState } from './stores.ts';

/**
 * Drift: signs that a session is no longer the one that started. A violation invalidates the
 * session; a warning refuses this call (DRIFT_DETECTED) and leaves the session alive.
 */
export interface DriftOptions {
  /** `strict`: any IP change is a violation. `tolerant`: an IP change is fine while the geo
   * distance from the origin stays within `geoDriftMaxKm` (missing geo fails closed). */
  ipGeo?: 'strict' | 'tolerant' | 'off';
  geoDriftMaxKm?: number;
  /** Device change: a violation (`strict`) or ignored. */
  device?: 'strict' | 'off';
  /** Sessions older than this are invalidated (duration; default 24h). `false` turns it off. */
  maxSessionAge?: string | number | false;
  /** Calls per minute in one session above which each call is refused (default 120). */
  warnActionsPerMinute?: number;
  /** Calls per minute in one session above which the session is invalidated (default 600, at least warn). */
  maxActionsPerMinute?: number;
}

export interface ResolvedDrift {
  ipGeo: 'strict' | 'tolerant' | 'off';
  geoDriftMaxKm: number;
  device: 'strict' | 'off';
  maxSessionAgeMs: number | undefined;
  warnActionsPerMinute: number;
  maxActionsPerMinute: number;
}

export type DriftFinding =
  | { level: 'none' }
  | { level: 'warn' | 'violation'; detector: string; reason: string };

const NONE: DriftFinding = { level: 'none' };
export const BEHAVIOUR_WINDOW_MS = 60_000;

export function resolveDrift(opts: DriftOptions | false | undefined): ResolvedDrift | undefined {
  if (opts === false) return undefined;
  const o = opts ?? {};
  const positive = (v: number | undefined, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TypeError(`drift.${name} must be a positive number`);
    return v;
  };
  const warn = positive(o.warnActionsPerMinute, 'warnActionsPerMinute', 120);
  const max = positive(o.maxActionsPerMinute, 'maxActionsPerMinute', Math.max(600, warn));
  if (max < warn) throw new TypeError('drift.maxActionsPerMinute must be at least warnActionsPerMinute');
  // Session stores remember at most MAX_RECENT call times: a higher threshold could never trip.
  for (const [name, v] of [['warnActionsPerMinute', warn], ['maxActionsPerMinute', max]] as const) {
    if (v >= MAX_RECENT) throw new TypeError(`drift.${name} must be below ${MAX_RECENT} (the calls a session store remembers)`);
  }
  if (!['strict', 'tolerant', 'off', undefined].includes(o.ipGeo)) throw new TypeError('drift.ipGeo must be strict, tolerant or off');
  if (!['strict', 'off', undefined].includes(o.device)) throw new TypeError('drift.device must be strict or off');
  return {
    ipGeo: o.ipGeo ?? 'strict',
    geoDriftMaxKm: positive(o.geoDriftMaxKm, 'geoDriftMaxKm', 500),
    device: o.device ?? 'strict',
    maxSessionAgeMs: o.maxSessionAge === false ? undefined : parseDuration(o.maxSessionAge ?? '24h'),
    warnActionsPerMinute: warn,
    maxActionsPerMinute: max,
  };
}

/** Great-circle distance in km (haversine, mean Earth radius). */
export function haversineKm(a: GeoLocation, b: GeoLocation): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(h)));
}

export function detectDrift(ctx: ValidContext, session: SessionState, cfg: ResolvedDrift, now: number): DriftFinding {
  const originIp = ctx.originIp ?? session.originIp;
  const originGeo = ctx.originGeo ?? session.originGeo;
  const originDevice = ctx.originDevice ?? session.originDevice;
  // Origins are taken from a session's first call. A session that began without an IP (or device)
  // and shows one later has changed as much as one that drops it: either way fails closed.
  const later = session.actionCount > 1;

  if (cfg.maxSessionAgeMs !== undefined && now - session.startedAt > cfg.maxSessionAgeMs) {
    return { level: 'violation', detector: 'session_age', reason: 'session is older than its maximum age' };
  }
  if (cfg.ipGeo !== 'off') {
    const ipChanged = originIp !== undefined ? ctx.ip !== originIp : later && ctx.ip !== undefined;
    if (ipChanged && cfg.ipGeo === 'strict') {
      return { level: 'violation', detector: 'ip', reason: `IP changed from ${originIp ?? 'none'} to ${ctx.ip ?? 'none'} during the session` };
    }
    if (cfg.ipGeo === 'tolerant' && (ipChanged || originGeo !== undefined)) {
      if (!originGeo || !ctx.geo) return { level: 'violation', detector: 'geo', reason: 'location unknown, so travel since the session began cannot be checked' };
      const km = haversineKm(originGeo, ctx.geo);
      if (km > cfg.geoDriftMaxKm) {
        return { level: 'violation', detector: 'geo', reason: `moved ${Math.round(km)} km since the session began (limit ${cfg.geoDriftMaxKm} km)` };
      }
    }
    if (cfg.ipGeo === 'strict' && originGeo?.country !== undefined && ctx.geo?.country !== originGeo.country) {
      return { level: 'violation', detector: 'geo', reason: `country changed from ${originGeo.country} to ${ctx.geo?.country ?? 'unknown'}` };
    }
  }
  if (cfg.device === 'strict' && (originDevice !== undefined ? ctx.device !== originDevice : later && ctx.device !== undefined)) {
    return { level: 'violation', detector: 'device', reason: 'device changed during the session' };
  }
  const perMinute = session.recentCalls;
  if (perMinute > cfg.maxActionsPerMinute) {
    return { level: 'violation', detector: 'behaviour', reason: `${perMinute} calls in the last minute (limit ${cfg.maxActionsPerMinute})` };
  }
  if (perMinute > cfg.warnActionsPerMinute) {
    return { level: 'warn', detector: 'behaviour', reason: `${perMinute} calls in the last minute (over ${cfg.warnActionsPerMinute}); slow down` };
  }
  return NONE;
}
