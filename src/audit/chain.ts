import { canonicalJson } from '../engine/canonical-json.ts';
import { AuditError, type AuditErrorCode } from './errors.ts';
import {
  AUDIT_FORMAT_VERSION,
  fastCanonical,
  lineOf,
  recordHash,
  ZERO_HASH,
  type AuditRecord,
  type CheckpointMode,
  type CheckpointRecord,
} from './record.ts';

/** One file's complete lines, in order. */
export interface ChainSource {
  name: string;
  lines: readonly string[];
}

export interface WalkOptions {
  /** The chain may begin mid-way (a lone rotated segment): the first record sets the baseline. */
  partial?: boolean;
  /** Every checkpoint must be in this mode (else the genesis record's mode rules). */
  expectMode?: CheckpointMode;
  /** A checkpoint known from outside the file (the seal file): the chain must contain it. */
  anchor?: { seq: number; hash: string };
  /** The record just before the first one walked (the end of the previous segment). */
  after?: { seq: number; hash: string; log: string };
  /** Index of the first record walked (a tail checked on open starts mid-log). */
  startIndex?: number;
  /** Called for every record that links correctly. */
  onRecord?: (record: AuditRecord, index: number) => void;
}

export interface CheckpointAt {
  index: number;
  record: CheckpointRecord;
  file: string;
  line: number;
}

/** The chain fields of a line, read leniently to explain a break (never trusted otherwise). */
interface Peek {
  seq: unknown;
  prev: unknown;
  log: unknown;
  hash: unknown;
}

const MODES = new Set(['hybrid', 'pq']);

/**
 * Walks records in order and checks each one: canonical bytes, its own hash, its link to the
 * record before (seq, prev, log id), and the checkpoints' signed fields. A break is explained as
 * precisely as the neighbouring records allow (edited, re-hashed, inserted, dropped, reordered,
 * spliced) and names the index. Signatures are checked afterwards (they are async): see
 * `checkpoints`.
 */
export class ChainWalker {
  /** Records walked so far (the next record's index). */
  index = 0;
  nextSeq = 0;
  head = ZERO_HASH;
  firstSeq = 0;
  logId: string | undefined;
  mode: CheckpointMode | undefined;
  genesisKid: string | undefined;
  readonly checkpoints: CheckpointAt[] = [];
  anchorSeen = false;
  /** Records linked so far. */
  walked = 0;
  private prevHead = ZERO_HASH;

  constructor(private readonly opts: WalkOptions = {}) {
    this.mode = opts.expectMode;
    this.index = opts.startIndex ?? 0;
    if (opts.after) {
      this.nextSeq = opts.after.seq + 1;
      this.firstSeq = this.nextSeq;
      this.head = opts.after.hash;
      this.logId = opts.after.log;
    }
  }

  walk(src: ChainSource): void {
    const { lines, name } = src;
    for (let at = 0; at < lines.length; at++) {
      const where = { file: name, line: at + 1 };
      const record = parseRecord(lines[at] as string, this.index, where);
      this.link(record, lines, at, where);
      if (record.type === 'checkpoint') this.checkpoint(record as CheckpointRecord, where);
      if (this.opts.anchor && record.seq === this.opts.anchor.seq) {
        if (record.hash !== this.opts.anchor.hash) {
          throw new AuditError(
            'ANCHOR_MISMATCH',
            this.index,
            `the seal file's checkpoint at seq ${record.seq} has hash ${this.opts.anchor.hash}, the log has ${record.hash}: the log was rewritten`,
            where,
          );
        }
        this.anchorSeen = true;
      }
      this.opts.onRecord?.(record, this.index);
      this.prevHead = this.head;
      this.head = record.hash;
      this.nextSeq = record.seq + 1;
      this.index++;
      this.walked++;
    }
  }

  private link(rec: AuditRecord, lines: readonly string[], at: number, where: { file: string; line: number }): void {
    const i = this.index;
    if (this.walked === 0 && !this.opts.after) {
      this.start(rec, where);
      return;
    }
    if (rec.log !== this.logId) {
      throw new AuditError(
        'SPLICED',
        i,
        `record belongs to log ${JSON.stringify(rec.log)}, not ${JSON.stringify(this.logId)}: two logs were spliced together`,
        where,
      );
    }
    const e = this.nextSeq;
    const h = this.head;
    if (rec.seq === e && rec.prev === h) {
      if (rec.type === 'genesis') throw new AuditError('BAD_RECORD', i, 'a second genesis record', where);
      return;
    }
    if (rec.hash === h && rec.seq === e - 1) {
      throw new AuditError('INSERTED', i, `record is a copy of record ${i - 1}`, where);
    }
    if (rec.seq > e) this.explainAhead(rec, lines, at, where);
    const next = peek(lines[at + 1]);
    if (next !== undefined && next.log === this.logId && next.seq === e && next.prev === h) {
      throw new AuditError('INSERTED', i, `record does not belong to the chain: the next record links to record ${i - 1}`, where);
    }
    if (rec.seq === e) {
      if (next !== undefined && next.prev === rec.hash && next.seq === e + 1) {
        throw new AuditError('REWRITTEN', i - 1, `record was changed and re-hashed: record ${i} links to a different version of it`, {
          file: where.file,
          line: Math.max(1, where.line - 1),
        });
      }
      if (next !== undefined) {
        throw new AuditError(
          'FORGED',
          i,
          'record does not link to the record before it, and the next record does not link to it: it was replaced',
          where,
        );
      }
      throw new AuditError('CHAIN_BROKEN', i, `prev is ${String(rec.prev)}, the record before has hash ${h}`, where);
    }
    if (rec.seq === e - 1 && rec.prev === this.prevHead) {
      // Two records claim the same place; the real one is the one the next record links to.
      if (next !== undefined && next.prev === rec.hash) {
        throw new AuditError(
          'INSERTED',
          i - 1,
          `record does not belong to the chain: record ${i} claims its place and the next record links to that one`,
          { file: where.file, line: Math.max(1, where.line - 1) },
        );
      }
      throw new AuditError('INSERTED', i, `record claims the place of record ${i - 1}`, where);
    }
    throw new AuditError('REORDERED', i, `found seq ${rec.seq} after seq ${e - 1}`, where);
  }

  /** A seq beyond the expected one: the expected record is later (moved), or gone. */
  private explainAhead(rec: AuditRecord, lines: readonly string[], at: number, where: { file: string; line: number }): never {
    const i = this.index;
    const e = this.nextSeq;
    let found = -1;
    let twin = false;
    for (let j = at + 1; j < lines.length; j++) {
      const later = peek(lines[j]);
      if (later === undefined || later.log !== this.logId) continue;
      if (later.seq === e && found < 0) found = j;
      if (later.seq === rec.seq) twin = true;
    }
    if (found >= 0 && twin) {
      throw new AuditError(
        'INSERTED',
        i,
        `record does not belong here: seq ${rec.seq} appears again later, and seq ${e} belongs here`,
        where,
      );
    }
    if (found >= 0) {
      throw new AuditError(
        'REORDERED',
        i,
        `found seq ${rec.seq} where seq ${e} belongs; seq ${e} appears ${found - at} records later`,
        where,
      );
    }
    const missing = rec.seq - e;
    throw new AuditError(
      'DROPPED',
      i,
      `${missing === 1 ? `record seq ${e} is` : `records seq ${e}..${rec.seq - 1} are`} missing (found seq ${rec.seq})`,
      where,
    );
  }

  private start(rec: AuditRecord, where: { file: string; line: number }): void {
    if (this.opts.partial && rec.type !== 'genesis') {
      this.logId = rec.log;
      this.firstSeq = rec.seq;
      return;
    }
    this.firstSeq = 0;
    if (rec.type !== 'genesis' || rec.seq !== 0 || rec.prev !== ZERO_HASH) {
      throw new AuditError(
        'BAD_START',
        this.index,
        `the log does not begin with its genesis record (found ${rec.type} seq ${rec.seq}): earlier records or segments are missing`,
        where,
      );
    }
    const g = rec as { mode?: unknown; kid?: unknown; version?: unknown };
    if (typeof g.mode !== 'string' || !MODES.has(g.mode) || typeof g.kid !== 'string') {
      throw new AuditError('BAD_RECORD', this.index, 'genesis record needs mode (hybrid|pq) and kid', where);
    }
    if (g.version !== AUDIT_FORMAT_VERSION) {
      throw new AuditError(
        'BAD_RECORD',
        this.index,
        `audit format version ${String(g.version)} is not supported (this build reads ${AUDIT_FORMAT_VERSION})`,
        where,
      );
    }
    if (this.mode !== undefined && g.mode !== this.mode) {
      throw new AuditError('MODE_MISMATCH', this.index, `the log is ${g.mode}, the verifier expects ${this.mode}`, where);
    }
    this.logId = rec.log;
    this.mode = g.mode as CheckpointMode;
    this.genesisKid = g.kid;
  }

  private checkpoint(cp: CheckpointRecord, where: { file: string; line: number }): void {
    const i = this.index;
    if (!Number.isSafeInteger(cp.size) || cp.size !== cp.seq || cp.head !== cp.prev) {
      throw new AuditError(
        'BAD_CHECKPOINT',
        i,
        `checkpoint signs size ${String(cp.size)} / head ${String(cp.head)} but sits at seq ${cp.seq} after ${cp.prev}`,
        where,
      );
    }
    if (typeof cp.mode !== 'string' || !MODES.has(cp.mode) || typeof cp.kid !== 'string' || typeof cp.sig !== 'string') {
      throw new AuditError('BAD_RECORD', i, 'checkpoint needs mode, kid and sig', where);
    }
    if (this.mode === undefined) this.mode = cp.mode;
    else if (cp.mode !== this.mode) {
      throw new AuditError('MODE_MISMATCH', i, `checkpoint is ${cp.mode} in a ${this.mode} log`, where);
    }
    this.checkpoints.push({ index: i, record: cp, ...where });
  }
}

/**
 * Parses and checks one line: JSON object, hash over its canonical content, exact canonical bytes
 * (so a duplicate key or any re-encoding is caught), and well-typed chain header.
 */
export function parseRecord(line: string, index: number, where: { file: string; line: number }): AuditRecord {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    throw new AuditError('BAD_RECORD', index, line.length === 0 ? 'empty line' : 'not valid JSON', where);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new AuditError('BAD_RECORD', index, 'not a JSON object', where);
  const rec = obj as Record<string, unknown>;
  const hash = rec.hash;
  if (typeof hash !== 'string') throw new AuditError('BAD_RECORD', index, 'no hash', where);
  delete rec.hash;
  let canonical = fastCanonical(rec);
  if (canonical === undefined || lineOf(canonical, hash) !== line) {
    try {
      canonical = canonicalJson(rec);
    } catch (err) {
      throw new AuditError('BAD_RECORD', index, `cannot be encoded: ${(err as Error).message}`, where);
    }
  }
  if (recordHash(canonical) !== hash) {
    throw new AuditError('HASH_MISMATCH', index, 'record was edited: its hash does not match its content', where);
  }
  if (lineOf(canonical, hash) !== line) {
    throw new AuditError('NOT_CANONICAL', index, 'record is not in canonical form (re-encoded, or a duplicate key)', where);
  }
  rec.hash = hash;
  if (!Number.isSafeInteger(rec.seq) || (rec.seq as number) < 0)
    throw new AuditError('BAD_RECORD', index, 'seq must be a non-negative integer', where);
  if (typeof rec.prev !== 'string' || rec.prev.length !== 43) throw new AuditError('BAD_RECORD', index, 'prev must be a hash', where);
  if (typeof rec.log !== 'string' || rec.log.length === 0) throw new AuditError('BAD_RECORD', index, 'log must be a string', where);
  if (typeof rec.time !== 'number') throw new AuditError('BAD_RECORD', index, 'time must be a number', where);
  if (typeof rec.type !== 'string') throw new AuditError('BAD_RECORD', index, 'type must be a string', where);
  if (
    rec.type === 'verdict' &&
    (typeof rec.principal !== 'string' || typeof rec.verdict !== 'string' || typeof rec.evaluationId !== 'string')
  ) {
    throw new AuditError('BAD_RECORD', index, 'verdict record needs evaluationId, principal and verdict', where);
  }
  return rec as unknown as AuditRecord;
}

function peek(line: string | undefined): Peek | undefined {
  if (line === undefined) return undefined;
  try {
    const v = JSON.parse(line) as Peek | null;
    return v !== null && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Maps a signature failure to the audit code that explains it. */
export function signatureFailure(err: unknown, index: number, cp: CheckpointAt): AuditError {
  const code = (err as { code?: unknown })?.code;
  const message = (err as Error)?.message ?? String(err);
  let mapped: AuditErrorCode = 'BAD_SIGNATURE';
  if (code === 'UNKNOWN_KEY' || code === 'WRONG_KEY') mapped = 'WRONG_KEY';
  else if (code === 'ALG_MISMATCH' || code === 'MODE_MISMATCH') mapped = 'MODE_MISMATCH';
  const why =
    mapped === 'WRONG_KEY'
      ? `checkpoint was signed by key ${cp.record.kid}, which the verifier does not hold`
      : mapped === 'MODE_MISMATCH'
        ? `checkpoint signature is not ${cp.record.mode}`
        : 'checkpoint signature does not verify';
  return new AuditError(mapped, index, `${why}${typeof code === 'string' ? ` [${code}]` : ''}: ${message}`, {
    file: cp.file,
    line: cp.line,
    cause: err,
  });
}
