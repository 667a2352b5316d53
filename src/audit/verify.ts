import { readFile, stat } from 'node:fs/promises';
import { isAuditAnchor, type AuditAnchor } from './anchor.ts';
import { checkAgainstAnchor, type AnchorCheckReport } from './anchor-check.ts';
import { ChainWalker, signatureFailure, type CheckpointAt } from './chain.ts';
import { AuditError } from './errors.ts';
import { listSegments, resolveLogPath } from './files.ts';
import { checkpointVerifierFrom, type AuditKeys } from './keys.ts';
import { CHECKPOINT_DOMAIN, checkpointMessage, type AuditRecord, type CheckpointMode, type CheckpointRecord } from './record.ts';
import { parseAnchor, readSeal } from './seal.ts';
import { firstNonUtf8Line, splitLog } from './split.ts';

export interface VerifyOptions {
  /** Require this signature mode (else the log's genesis record says which). */
  mode?: CheckpointMode;
  /** Accept a chain that starts mid-way (one rotated segment on its own). */
  partial?: boolean;
  /**
   * A witness the log's checkpoints were sent to (an AuditAnchor, e.g. RedisAuditAnchor): the log
   * must reach its newest checkpoint and hold every one it took, unchanged; the seal file is
   * checked as well. Or one checkpoint kept outside the log (e.g. `log.lastCheckpoint`, shipped
   * elsewhere): the log must still contain it, and the seal file is not read. Without either, a
   * path's seal file (PATH.seal) is used when present.
   */
  anchor?: AuditAnchor | CheckpointRecord | string;
  /**
   * Fail (UNSEALED) on records no checkpoint seals (hash-chained only: anyone able to write the
   * file could have added them) and, with a witness anchor, on records after the newest checkpoint
   * it holds (the log's host could still cut them).
   */
  requireSealed?: boolean;
  /** Fail when no checkpoint seals anything. */
  requireCheckpoint?: boolean;
  /**
   * Key ids allowed to seal this log. With a directory of several replicas' keys, any trusted key
   * would otherwise do, so one compromised replica could re-seal another replica's log.
   */
  signers?: readonly string[];
}

export type Counts = Record<string, number>;

export interface AuditReport {
  logId: string;
  mode: CheckpointMode | undefined;
  /** The files read, oldest segment first. */
  files: string[];
  records: number;
  firstSeq: number;
  lastSeq: number;
  head: string;
  firstTime: number | undefined;
  lastTime: number | undefined;
  checkpoints: number;
  lastCheckpoint: { seq: number; time: number; kid: string } | undefined;
  /** Records after the newest checkpoint: chained but not yet sealed by a signature. */
  unsealed: number;
  /** Kids that signed checkpoints. */
  kids: string[];
  /** False when read without keys (`readAuditLog`, `kavach audit stats` without --keys). */
  signaturesChecked: boolean;
  /** A seal file or anchor was checked against the log. */
  anchored: boolean;
  /** The check against a witness anchor (`anchor: AuditAnchor`), when one was given. */
  witness: AnchorCheckReport | undefined;
  /** A torn last line (a crash the writer has not yet recovered from); not counted as records. */
  tornTail: { file: string; bytes: number } | undefined;
  /** Torn tails cut by the writer on reopen (recovery records). */
  recoveries: number;
  /**
   * Records a writer found unsealed when it reopened the log (summed over `resume` records): they
   * were sealed only afterwards, so the checkpoint vouches for what the file held at restart, not
   * for what the writer wrote before it stopped (a crash, or lines added while no writer held it).
   */
  resealed: number;
  byType: Counts;
  byVerdict: Counts;
  byCode: Counts;
  byPrincipal: Counts;
  byAction: Counts;
  bySession: Counts;
  byOutcome: Counts;
  /** Approval records by event: requested, granted, denied, used, returned, expired. */
  byApproval: Counts;
  /** Observe-mode verdicts (the caller was permitted; `verdict` is what enforcement would say). */
  observed: number;
}

export interface ScanOptions extends VerifyOptions {
  /** Checkpoint keys; null: check the chain only. */
  keys: AuditKeys | null;
  /** Each record, in order, as it is checked. */
  onRecord?: (record: AuditRecord, index: number) => void;
}

/**
 * Verifies a whole log: every record's hash and link, every checkpoint's signature (and mode), the
 * seal file or anchor. Resolves with counts; throws AuditError naming the first bad index.
 * `pathOrText`: a log path (its rotated segments are included), JSON Lines text, or an explicit list
 * of segment paths in order.
 */
export async function verifyAuditLog(
  pathOrText: string | readonly string[],
  keys: AuditKeys,
  opts: VerifyOptions = {},
): Promise<AuditReport> {
  if (keys === null || keys === undefined) throw new TypeError('verifyAuditLog: keys are required (use readAuditLog to read without them)');
  return scanAuditLog(pathOrText, { ...opts, keys });
}

/** Reads a log's records after checking its chain (signatures only when `keys` are given). */
export async function readAuditLog(
  pathOrText: string | readonly string[],
  opts: Partial<ScanOptions> = {},
): Promise<{ records: AuditRecord[]; report: AuditReport }> {
  const records: AuditRecord[] = [];
  const report = await scanAuditLog(pathOrText, {
    ...opts,
    keys: opts.keys ?? null,
    onRecord: (r, i) => {
      records.push(r);
      opts.onRecord?.(r, i);
    },
  });
  return { records, report };
}

export async function scanAuditLog(source: string | readonly string[], opts: ScanOptions): Promise<AuditReport> {
  const { files, sealOf } = await loadSources(source);
  const witness = isAuditAnchor(opts.anchor) ? opts.anchor : undefined;
  let anchor: CheckpointRecord | undefined;
  if (opts.anchor !== undefined && witness === undefined)
    anchor = typeof opts.anchor === 'string' ? parseAnchor(opts.anchor.trim(), 'anchor') : (opts.anchor as CheckpointRecord);
  else if (sealOf !== undefined) anchor = await readSeal(sealOf);

  const stats = new Stats();
  const walker = new ChainWalker({
    ...(opts.partial ? { partial: true } : {}),
    ...(opts.mode ? { expectMode: opts.mode } : {}),
    ...(anchor ? { anchor: { seq: anchor.seq, hash: anchor.hash } } : {}),
    onRecord: (r, i) => {
      stats.add(r);
      opts.onRecord?.(r, i);
    },
  });
  let chainError: AuditError | undefined;
  let tornTail: AuditReport['tornTail'];
  for (let f = 0; f < files.length && !chainError; f++) {
    const file = files[f] as Source;
    // One segment in memory at a time: a long log is many bounded segments.
    const buf = await file.read();
    const split = splitLog(buf);
    const badUtf8 = firstNonUtf8Line(buf, split.goodBytes);
    try {
      walker.walk({ name: file.name, lines: badUtf8 < 0 ? split.lines : split.lines.slice(0, badUtf8) });
      if (badUtf8 >= 0)
        throw new AuditError('BAD_RECORD', walker.index, 'not valid UTF-8 (the bytes were changed)', {
          file: file.name,
          line: badUtf8 + 1,
        });
    } catch (err) {
      if (!(err instanceof AuditError)) throw err;
      chainError = err;
      break;
    }
    if (split.tornBytes > 0) {
      if (f < files.length - 1) {
        chainError = new AuditError(
          'BAD_RECORD',
          walker.index,
          `segment ends in a torn line of ${split.tornBytes} bytes, but later segments follow`,
          { file: file.name, line: split.lines.length + 1 },
        );
      } else {
        tornTail = { file: file.name, bytes: split.tornBytes };
      }
    }
  }

  const kids = new Set<string>();
  const verifier = opts.keys !== null ? checkpointVerifierFrom(opts.keys) : undefined;
  if (verifier !== undefined) {
    for (const cp of walker.checkpoints) {
      if (chainError && cp.index >= chainError.index) break;
      await checkSignature(verifier, cp, walker.mode ?? cp.record.mode);
      if (opts.signers && !opts.signers.includes(cp.record.kid)) {
        throw new AuditError(
          'WRONG_KEY',
          cp.index,
          `checkpoint was signed by key ${cp.record.kid}, which may not seal this log (allowed: ${opts.signers.join(', ')})`,
          { file: cp.file, line: cp.line },
        );
      }
      kids.add(cp.record.kid);
    }
  }
  if (chainError) throw chainError;
  if (walker.walked === 0) throw new AuditError('BAD_START', 0, 'the log holds no records', files[0] ? { file: files[0].name } : undefined);

  let anchored = false;
  if (anchor) {
    if (anchor.log !== walker.logId)
      throw new AuditError('ANCHOR_MISMATCH', -1, `the anchor checkpoint belongs to log ${anchor.log}, not ${String(walker.logId)}`);
    if (!walker.anchorSeen && anchor.seq >= walker.nextSeq) {
      throw new AuditError(
        'TRUNCATED',
        walker.index,
        `the log ends at seq ${walker.nextSeq - 1}, but a checkpoint at seq ${anchor.seq} is known (${sealOf !== undefined && (opts.anchor === undefined || witness !== undefined) ? 'seal file' : 'anchor'}): records were cut`,
      );
    }
    anchored = walker.anchorSeen;
  }
  const last = walker.checkpoints.at(-1)?.record;
  if (opts.requireCheckpoint && !last) throw new AuditError('TRUNCATED', walker.index, 'no checkpoint seals any record');
  let witnessed: AnchorCheckReport | undefined;
  if (witness !== undefined) {
    witnessed = await checkAgainstAnchor(
      witness,
      {
        logId: walker.logId as string,
        mode: walker.mode,
        firstSeq: walker.firstSeq,
        nextSeq: walker.nextSeq,
        checkpoints: walker.checkpoints,
      },
      verifier,
    );
    anchored = true;
  }
  if (opts.requireSealed) requireSealed(walker, stats.unsealed, witnessed);
  return {
    logId: walker.logId as string,
    mode: walker.mode,
    files: files.map((f) => f.name),
    records: walker.walked,
    firstSeq: walker.firstSeq,
    lastSeq: walker.nextSeq - 1,
    head: walker.head,
    firstTime: stats.firstTime,
    lastTime: stats.lastTime,
    checkpoints: walker.checkpoints.length,
    lastCheckpoint: last ? { seq: last.seq, time: last.time, kid: last.kid } : undefined,
    unsealed: stats.unsealed,
    kids: opts.keys !== null ? [...kids] : [...new Set(walker.checkpoints.map((c) => c.record.kid))],
    signaturesChecked: opts.keys !== null,
    anchored,
    witness: witnessed,
    tornTail,
    recoveries: stats.byType.recovery ?? 0,
    resealed: stats.resealed,
    byType: plain(stats.byType),
    byVerdict: plain(stats.byVerdict),
    byCode: plain(stats.byCode),
    byPrincipal: plain(stats.byPrincipal),
    byAction: plain(stats.byAction),
    bySession: plain(stats.bySession),
    byOutcome: plain(stats.byOutcome),
    byApproval: plain(stats.byApproval),
    observed: stats.observed,
  };
}

/** `requireSealed`: the first record nothing vouches for, if any, fails the log. */
function requireSealed(walker: ChainWalker, unsealed: number, witnessed: AnchorCheckReport | undefined): void {
  const lastSeq = walker.nextSeq - 1;
  if (unsealed > 0) {
    const from = walker.nextSeq - unsealed;
    throw new AuditError(
      'UNSEALED',
      walker.index - unsealed,
      `${unsealed === 1 ? `record seq ${from} is` : `${unsealed} records (seq ${from}..${lastSeq}) are`} after the last checkpoint: hash-chained only, so anyone able to write the file could have added ${unsealed === 1 ? 'it' : 'them'}`,
    );
  }
  if (witnessed !== undefined && witnessed.unanchored > 0) {
    const n = witnessed.unanchored;
    throw new AuditError(
      'UNSEALED',
      walker.index - n,
      `${n === 1 ? `record seq ${lastSeq} is` : `${n} records (seq ${lastSeq - n + 1}..${lastSeq}) are`} after the newest checkpoint the audit anchor holds (seq ${witnessed.latest.seq}): sealed only locally, so the log's host could still cut ${n === 1 ? 'it' : 'them'}`,
    );
  }
}

async function checkSignature(verifier: ReturnType<typeof checkpointVerifierFrom>, cp: CheckpointAt, mode: CheckpointMode): Promise<void> {
  let kid: string;
  try {
    ({ kid } = await verifier.verifyCheckpoint(mode, CHECKPOINT_DOMAIN, checkpointMessage(cp.record), cp.record.sig, cp.record.time));
  } catch (err) {
    throw signatureFailure(err, cp.index, cp);
  }
  if (kid !== cp.record.kid) {
    throw new AuditError('BAD_CHECKPOINT', cp.index, `checkpoint names key ${cp.record.kid} but was signed by ${kid}`, {
      file: cp.file,
      line: cp.line,
    });
  }
}

/**
 * Counters keyed by recorded names (principals, actions, sessions: chosen by agents): no prototype,
 * so "constructor" or "toString" start at 0 like any name and "__proto__" is a key, not a setter.
 */
function counts(): Counts {
  return Object.create(null) as Counts;
}

/** A plain object for the report; fromEntries defines "__proto__" as an own key. */
function plain(c: Counts): Counts {
  return Object.fromEntries(Object.entries(c));
}

function bump(counts: Counts, key: string | undefined): void {
  if (key !== undefined) counts[key] = (counts[key] ?? 0) + 1;
}

class Stats {
  byType: Counts = counts();
  byVerdict: Counts = counts();
  byCode: Counts = counts();
  byPrincipal: Counts = counts();
  byAction: Counts = counts();
  bySession: Counts = counts();
  byOutcome: Counts = counts();
  byApproval: Counts = counts();
  observed = 0;
  unsealed = 0;
  resealed = 0;
  firstTime: number | undefined;
  lastTime: number | undefined;

  add(r: AuditRecord): void {
    bump(this.byType, r.type);
    this.firstTime ??= r.time;
    this.lastTime = r.time;
    if (r.type === 'checkpoint') {
      this.unsealed = 0;
      return;
    }
    this.unsealed++;
    if (r.type === 'verdict') {
      bump(this.byVerdict, r.verdict);
      bump(this.byCode, r.code);
      bump(this.byPrincipal, r.principal);
      bump(this.byAction, r.action);
      bump(this.bySession, r.session);
      if (r.observed === true) this.observed++;
    } else if (r.type === 'outcome') {
      bump(this.byOutcome, r.outcome);
    } else if (r.type === 'approval') {
      bump(this.byApproval, typeof r.event === 'string' ? r.event : undefined);
    } else if (r.type === 'resume' && Number.isSafeInteger(r.unsealed) && r.unsealed > 0) {
      this.resealed += r.unsealed;
    }
  }
}

interface Source {
  name: string;
  read(): Promise<Buffer>;
}

async function loadSources(source: string | readonly string[]): Promise<{ files: Source[]; sealOf?: string }> {
  const fromPath = (p: string): Source => ({ name: p, read: () => readOrMissing(p) });
  if (typeof source !== 'string') {
    if (source.length === 0) throw new AuditError('NOT_FOUND', -1, 'no audit files given');
    return { files: source.map(fromPath) };
  }
  if (source.includes('\n') || source.trimStart().startsWith('{')) {
    return { files: [{ name: '(text)', read: async () => Buffer.from(source, 'utf8') }] };
  }
  // A symlink to the log: its segments and seal file are named after the file it points to.
  const given = source;
  const path = await resolveLogPath(given).catch(() => given);
  const files = (await listSegments(path)).map((s) => fromPath(s.path));
  const active = await stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
  if (active) files.push(fromPath(path));
  if (files.length === 0) throw new AuditError('NOT_FOUND', -1, `no audit log at ${given}`);
  return { files, sealOf: path };
}

async function readOrMissing(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AuditError('NOT_FOUND', -1, `no audit file at ${path}`);
    throw err;
  }
}
