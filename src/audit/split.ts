/**
 * Splits a log file into its complete lines. A crash can leave a torn last line (no newline) and,
 * after a power loss, runs of NUL bytes where the file system had allocated but not written: both
 * are the torn tail, reported in bytes so a writer can cut exactly there.
 */
export interface SplitLog {
  lines: string[];
  /** Bytes up to and including the last good newline. */
  goodBytes: number;
  /** Bytes after it (0 when the file ends cleanly). */
  tornBytes: number;
}

export function splitLog(buf: Uint8Array): SplitLog {
  let end = buf.lastIndexOf(0x0a) + 1;
  // Whole lines of NULs at the end are unwritten blocks, not records.
  while (end > 0) {
    const start = buf.lastIndexOf(0x0a, end - 2) + 1;
    if (end - 1 <= start || !allNul(buf, start, end - 1)) break;
    end = start;
  }
  const text = Buffer.from(buf.buffer, buf.byteOffset, end).toString('utf8');
  const lines = end === 0 ? [] : text.slice(0, -1).split('\n');
  return { lines, goodBytes: end, tornBytes: buf.length - end };
}

function allNul(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}
