import { isUtf8 } from 'node:buffer';

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

/**
 * The 0-based index of the first complete line that is not valid UTF-8, or -1. Decoding replaces a
 * bad byte with U+FFFD, so without this check a record's bytes could be changed (EF BF BD to FF)
 * and still hash the same: another encoding of the same content, which the format rejects.
 */
export function firstNonUtf8Line(buf: Uint8Array, goodBytes: number): number {
  if (isUtf8(buf.subarray(0, goodBytes))) return -1;
  let line = 0;
  for (let start = 0; start < goodBytes; line++) {
    const end = buf.indexOf(0x0a, start);
    if (!isUtf8(buf.subarray(start, end))) return line;
    start = end + 1;
  }
  return -1;
}
