const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_MS = 366 * 86_400_000;

/**
 * Durations: `30s`, `15m`, `24h`, `7d`, `250ms`, or a bare number of seconds.
 * Returns milliseconds, or throws with a readable reason.
 */
export function parseDuration(value: unknown): number {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('duration must be finite');
    ms = value * 1_000;
  } else if (typeof value === 'string') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
    if (!m) throw new Error(`"${value}" is not a duration (use 30s, 15m, 24h, 7d or seconds)`);
    ms = Number(m[1]) * (UNIT_MS[m[2] ?? 's'] as number);
  } else {
    throw new Error('duration must be a string like "15m" or a number of seconds');
  }
  if (!(ms > 0)) throw new Error('duration must be positive');
  if (ms > MAX_MS) throw new Error('duration longer than a year');
  // A window that rounds to 0 ms forgets every charge at once: a rate limit with no limit.
  if (Math.round(ms) < 1) throw new Error('duration must be at least 1ms');
  return Math.round(ms);
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
