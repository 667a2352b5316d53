/** `"HH:MM-HH:MM"` with an optional IANA zone: `"09:00-17:30 Europe/Berlin"`. UTC when no zone. */
export interface TimeWindow {
  startMinute: number;
  endMinute: number;
  zone: string;
}

export function parseTimeWindow(text: string): TimeWindow {
  const m = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})(?: ([A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*))?$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a time window (use "HH:MM-HH:MM" or "HH:MM-HH:MM Zone/Name")`);
  const [sh, sm, eh, em] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
  if (sh > 23 || eh > 24 || sm > 59 || em > 59 || (eh === 24 && em !== 0)) throw new Error(`"${text}" has an impossible time`);
  const startMinute = sh * 60 + sm;
  const endMinute = eh * 60 + em;
  if (startMinute === endMinute) throw new Error(`"${text}" is an empty window`);
  const zone = m[5] ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new Error(`unknown time zone "${zone}"`);
  }
  return { startMinute, endMinute, zone };
}

const formatters = new Map<string, Intl.DateTimeFormat>();
// Offsets change at most at DST transitions; caching per zone per quarter hour keeps this cheap.
const offsetCache = new Map<string, { bucket: number; offsetMin: number }>();

function zoneOffsetMinutes(zone: string, now: number): number {
  if (zone === 'UTC') return 0;
  const bucket = Math.floor(now / 900_000);
  const cached = offsetCache.get(zone);
  if (cached && cached.bucket === bucket) return cached.offsetMin;
  let fmt = formatters.get(zone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(zone, fmt);
  }
  const parts: Record<string, number> = {};
  for (const p of fmt.formatToParts(bucket * 900_000)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const local = Date.UTC(
    parts.year as number,
    (parts.month as number) - 1,
    parts.day as number,
    parts.hour as number,
    parts.minute as number,
  );
  const offsetMin = Math.round((local - bucket * 900_000) / 60_000);
  offsetCache.set(zone, { bucket, offsetMin });
  return offsetMin;
}

export function inTimeWindow(window: TimeWindow, now: number): boolean {
  const minuteOfDay = (((Math.floor(now / 60_000) + zoneOffsetMinutes(window.zone, now)) % 1440) + 1440) % 1440;
  if (window.startMinute < window.endMinute) return minuteOfDay >= window.startMinute && minuteOfDay < window.endMinute;
  // Crosses midnight: 22:00-06:00.
  return minuteOfDay >= window.startMinute || minuteOfDay < window.endMinute;
}
