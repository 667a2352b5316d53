import { readFile, stat } from 'node:fs/promises';
import { AuditError, type AuditErrorCode } from '../errors.ts';
import { listSegments, resolveLogPath } from '../files.ts';
import type { AuditKeys } from '../keys.ts';
import type { AuditRecord } from '../record.ts';
import { splitLog } from '../split.ts';
import { scanAuditLog, type AuditReport, type VerifyOptions } from '../verify.ts';

/** Where and why a log failed verification. */
export interface IntegrityBreak {
  /** 0-based chain index of the first bad record; -1 when the problem is not one record. */
  index: number;
  code: AuditErrorCode;
  reason: string;
  file?: string;
  line?: number;
}

/** A line at or after a break: read leniently so the reviewer still sees it, never trusted. */
export interface UnverifiedLine {
  index: number;
  /** The parsed object, when the line is a JSON object. */
  record?: Record<string, unknown>;
  /** The raw text (first 4096 characters) when it is not. */
  raw?: string;
}

/** One log as the report sees it: the records that verified, and what broke, if anything. */
export interface LoadedLog {
  /** The FILE as given on the command line. */
  source: string;
  /** Records that passed verification, in chain order (index = position in this array). */
  records: AuditRecord[];
  /** The chain summary, when the whole log verified. */
  report?: AuditReport;
  broken?: IntegrityBreak;
  unverified: UnverifiedLine[];
  /** The files read, oldest segment first. */
  files: string[];
}

/**
 * Verifies one log (its rotated segments too) and keeps its records. A log that fails verification
 * is not an error here: the report must show it, broken, with the records that came before the
 * break (verified) and those from the break on (marked unverified). A missing file is an error.
 */
export async function loadLog(source: string, keys: AuditKeys, opts: VerifyOptions = {}): Promise<LoadedLog> {
  const records: AuditRecord[] = [];
  try {
    const report = await scanAuditLog(source, { ...opts, keys, onRecord: (r) => void records.push(r) });
    return { source, records, report, unverified: [], files: report.files };
  } catch (err) {
    if (!(err instanceof AuditError) || err.code === 'NOT_FOUND') throw err;
    const broken: IntegrityBreak = { index: err.index, code: err.code, reason: err.reason };
    if (err.file !== undefined) broken.file = err.file;
    if (err.line !== undefined) broken.line = err.line;
    const { files, lines } = await readLines(source);
    // A signature failure is found after the walk: records up to the break are all that verified.
    const cut = err.index >= 0 ? Math.min(err.index, records.length) : records.length;
    const unverified: UnverifiedLine[] = [];
    for (let i = cut; i < lines.length; i++) unverified.push(lenient(lines[i] as string, i));
    return { source, records: records.slice(0, cut), broken, unverified, files };
  }
}

function lenient(line: string, index: number): UnverifiedLine {
  try {
    const v: unknown = JSON.parse(line);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { index, record: v as Record<string, unknown> };
  } catch {
    // not JSON: shown raw
  }
  return { index, raw: line.slice(0, 4096) };
}

/** Every complete line of the log's files, in chain order (the same files verification reads). */
async function readLines(given: string): Promise<{ files: string[]; lines: string[] }> {
  const source = await resolveLogPath(given).catch(() => given);
  const files = (await listSegments(source)).map((s) => s.path);
  const active = await stat(source).then(
    () => true,
    () => false,
  );
  if (active) files.push(source);
  const lines: string[] = [];
  for (const f of files) {
    const split = splitLog(await readFile(f));
    for (const l of split.lines) lines.push(l);
  }
  return { files, lines };
}
