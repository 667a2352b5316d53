/** Small readers of recorded values, shared by the report's model modules. */

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The Date range (±1e8 days): a recorded time is any finite number, but an axis must span a finite width. */
const AXIS_LIMIT = 8.64e15;
export const onAxis = (t: number): number => Math.min(AXIS_LIMIT, Math.max(-AXIS_LIMIT, t));
