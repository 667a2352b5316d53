import type { Coordinates, GeoLocation, ValidContext } from './context.ts';
import { parseDuration } from './duration.ts';
import type { SessionState } from './stores.ts';

/**
 * Drift: signs that a session is no longer the one that started. A violation invalidates the
 * session. A warning alone lets the call through, except the behaviour warning (a throttle: that
 * call is refused DRIFT_DETECTED); `warningThreshold` warnings on one call refuse it, as in
 * Kavach's DriftEvaluator. Either way a refusal leaves the session alive.
 */
export interface DriftOptions {
  /** `strict`: any IP change (or country change) is a violation. `tolerant`: an IP change within
   * `geoDriftMaxKm` of the session's origin is a warning, beyond it a violation, and a location
   * without coordinates fails closed. Default: `tolerant` when `geoDriftMaxKm` is set, else `strict`. */
  ipGeo?: 'strict' | 'tolerant' | 'off';
  /** Tolerant mode's radius in km (default 500); setting it alone switches tolerant mode on. */
  geoDriftMaxKm?: number;
  /** Device change: a violation (`strict`) or ignored. */
  device?: 'strict' | 'off';
  /** Sessions older than this are invalidated; past 75% of it each call carries a warning.
   * Duration; default 4h (Kavach's). `false` turns it off. */
  maxSessionAge?: string | number | false;
  /** Calls per minute in one session above which each call is refused (default 120). */
  warnActionsPerMinute?: number;
  /** Calls per minute in one session above which the session is invalidated (default 600, at least warn). */
  maxActionsPerMinute?: number;
  /** This many drift warnings on one call refuse it DRIFT_DETECTED (default 3, Kavach's). */
  warningThreshold?: number;
}

export interface ResolvedDrift {
  ipGeo: 'strict' | 'tolerant' | 'off';
  geoDriftMaxKm: number;
  device: 'strict' | 'off';
  maxSessionAgeMs: number | undefined;
  warnActionsPerMinute: number;
  maxActionsPerMinute: number;
  warningThreshold: number;
  /** How many recent call times a session store must keep for the behaviour detector to see a violation. */
  recentLimit: number;
}

export type DriftFinding = { level: 'none' } | { level: 'warn' | 'violation'; detector: string; reason: string };

interface DriftWarning {
  detector: string;
  reason: string;
}

const NONE: DriftFinding = { level: 'none' };
export const BEHAVIOUR_WINDOW_MS = 60_000;
/** Kavach warns from 75% of the maximum session age on. */
export const SESSION_AGE_WARNING = 0.75;
export const DRIFT_DEFAULTS = {
  maxSessionAge: '4h',
  warnActionsPerMinute: 120,
  maxActionsPerMinute: 600,
  geoDriftMaxKm: 500,
  warningThreshold: 3,
} as const;

export function resolveDrift(opts: DriftOptions | false | undefined): ResolvedDrift | undefined {
  if (opts === false) return undefined;
  const o = opts ?? {};
  const positive = (v: number | undefined, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TypeError(`drift.${name} must be a positive number`);
    return v;
  };
  // Any positive finite rate: the gate asks its session store to remember enough calls to see it.
  const warn = positive(o.warnActionsPerMinute, 'warnActionsPerMinute', DRIFT_DEFAULTS.warnActionsPerMinute);
  const max = positive(o.maxActionsPerMinute, 'maxActionsPerMinute', Math.max(DRIFT_DEFAULTS.maxActionsPerMinute, warn));
  if (max < warn) throw new TypeError('drift.maxActionsPerMinute must be at least warnActionsPerMinute');
  if (!['strict', 'tolerant', 'off', undefined].includes(o.ipGeo)) throw new TypeError('drift.ipGeo must be strict, tolerant or off');
  if (!['strict', 'off', undefined].includes(o.device)) throw new TypeError('drift.device must be strict or off');
  // A radius that strict or off mode would ignore is a configuration mistake, not a default.
  if (o.geoDriftMaxKm !== undefined && o.ipGeo !== undefined && o.ipGeo !== 'tolerant') {
    throw new TypeError(`drift.geoDriftMaxKm applies to tolerant mode only (ipGeo is ${o.ipGeo})`);
  }
  const threshold = o.warningThreshold;
  if (threshold !== undefined && (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1)) {
    throw new TypeError('drift.warningThreshold must be a whole number of at least 1');
  }
  return {
    ipGeo: o.ipGeo ?? (o.geoDriftMaxKm !== undefined ? 'tolerant' : 'strict'),
    geoDriftMaxKm: positive(o.geoDriftMaxKm, 'geoDriftMaxKm', DRIFT_DEFAULTS.geoDriftMaxKm),
    device: o.device ?? 'strict',
    maxSessionAgeMs: o.maxSessionAge === false ? undefined : parseDuration(o.maxSessionAge ?? DRIFT_DEFAULTS.maxSessionAge),
    warnActionsPerMinute: warn,
    maxActionsPerMinute: max,
    warningThreshold: threshold ?? DRIFT_DEFAULTS.warningThreshold,
    recentLimit: Math.floor(max) + 1,
  };
}

/** Great-circle distance in km (haversine, mean Earth radius). */
export function haversineKm(a: Coordinates, b: Coordinates): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The distance between two locations, or undefined when either has no coordinates (a country only). */
export function distanceKm(a: GeoLocation, b: GeoLocation): number | undefined {
  if (a.lat === undefined || a.lon === undefined || b.lat === undefined || b.lon === undefined) return undefined;
  return haversineKm({ lat: a.lat, lon: a.lon }, { lat: b.lat, lon: b.lon });
}

export function detectDrift(ctx: ValidContext, session: SessionState, cfg: ResolvedDrift, now: number): DriftFinding {
  const originIp = ctx.originIp ?? session.originIp;
  const originGeo = ctx.originGeo ?? session.originGeo;
  const originDevice = ctx.originDevice ?? session.originDevice;
  // Origins are taken from a session's first call. A session that began without an IP (or device)
  // and shows one later has changed as much as one that drops it: either way fails closed.
  const later = session.actionCount > 1;
  const warnings: DriftWarning[] = [];

  if (cfg.maxSessionAgeMs !== undefined) {
    const age = now - session.startedAt;
    if (age > cfg.maxSessionAgeMs) return { level: 'violation', detector: 'session_age', reason: 'session is older than its maximum age' };
    if (age > cfg.maxSessionAgeMs * SESSION_AGE_WARNING) {
      warnings.push({
        detector: 'session_age',
        reason: `session is ${formatAge(age)} old, past ${SESSION_AGE_WARNING * 100}% of its maximum ${formatAge(cfg.maxSessionAgeMs)}`,
      });
    }
  }
  if (cfg.ipGeo !== 'off') {
    const ipChanged = originIp !== undefined ? ctx.ip !== originIp : later && ctx.ip !== undefined;
    if (ipChanged && cfg.ipGeo === 'strict') {
      return {
        level: 'violation',
        detector: 'ip',
        reason: `IP changed from ${originIp ?? 'none'} to ${ctx.ip ?? 'none'} during the session`,
      };
    }
    if (cfg.ipGeo === 'tolerant' && (ipChanged || originGeo !== undefined)) {
      if (!originGeo || !ctx.geo)
        return { level: 'violation', detector: 'geo', reason: 'location unknown, so travel since the session began cannot be checked' };
      const km = distanceKm(originGeo, ctx.geo);
      if (km === undefined) {
        return {
          level: 'violation',
          detector: 'geo',
          reason: `a location has no coordinates, so the distance from where the session began cannot be checked against ${cfg.geoDriftMaxKm} km`,
        };
      }
      if (km > cfg.geoDriftMaxKm) {
        return {
          level: 'violation',
          detector: 'geo',
          reason: `moved ${Math.round(km)} km since the session began (limit ${cfg.geoDriftMaxKm} km)`,
        };
      }
      if (ipChanged)
        warnings.push({
          detector: 'geo',
          reason: `IP changed from ${originIp ?? 'none'} to ${ctx.ip ?? 'none'}, ${Math.round(km)} km from where the session began (within ${cfg.geoDriftMaxKm} km)`,
        });
    }
    if (cfg.ipGeo === 'strict' && originGeo?.country !== undefined && ctx.geo?.country !== originGeo.country) {
      return {
        level: 'violation',
        detector: 'geo',
        reason: `country changed from ${originGeo.country} to ${ctx.geo?.country ?? 'unknown'}`,
      };
    }
  }
  if (cfg.device === 'strict' && (originDevice !== undefined ? ctx.device !== originDevice : later && ctx.device !== undefined)) {
    return { level: 'violation', detector: 'device', reason: 'device changed during the session' };
  }
  const perMinute = session.recentCalls;
  if (perMinute > cfg.maxActionsPerMinute) {
    return {
      level: 'violation',
      detector: 'behaviour',
      reason: `${perMinute} calls in the last minute (limit ${cfg.maxActionsPerMinute})`,
    };
  }
  const busy = perMinute > cfg.warnActionsPerMinute;
  if (busy)
    warnings.push({ detector: 'behaviour', reason: `${perMinute} calls in the last minute (over ${cfg.warnActionsPerMinute}); slow down` });
  if (warnings.length >= cfg.warningThreshold) {
    return {
      level: 'warn',
      detector: warnings.map((w) => w.detector).join('+'),
      reason: `${warnings.length} warnings at once (threshold ${cfg.warningThreshold}): ${warnings.map((w) => w.reason).join('; ')}`,
    };
  }
  // The behaviour warning throttles on its own: a burst is refused call by call, the session lives on.
  if (busy) return { level: 'warn', ...(warnings[warnings.length - 1] as DriftWarning) };
  return NONE;
}

function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  return minutes >= 120 ? `${Math.floor(minutes / 60)}h${minutes % 60 ? `${minutes % 60}m` : ''}` : `${minutes}m`;
}
