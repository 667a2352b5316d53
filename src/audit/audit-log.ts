import { randomBytes } from 'node:crypto';
import { mkdir, open, realpath, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditSink, GateEvent } from '../engine/ports.ts';
import { warningSink, type OnWarning } from '../engine/warnings.ts';
import type { AuditAnchor } from './anchor.ts';
import { CheckpointAnchoring } from './anchoring.ts';
import { isCheckpointSigner, type CheckpointSigner } from './checkpoint.ts';
import { EntryEncoder, type AuditEntry, type RecordTypeSchema } from './entry.ts';
import { AuditError } from './errors.ts';
import { resolveLogPath, syncDir } from './files.ts';
import { GroupCommitWriter, type PendingLine } from './group-commit.ts';
import { LogLock } from './lock.ts';
import { recoverTail, type TailState } from './recover.ts';
import {
  AUDIT_FORMAT_VERSION,
  CHECKPOINT_DOMAIN,
  checkpointMessage,
  sealRecord,
  ZERO_HASH,
  type AuditRecord,
  type CheckpointMode,
  type CheckpointRecord,
  type RecordBody,
} from './record.ts';
import { writeSeal } from './seal.ts';
import { resolveSigner, type KeyOptions } from './keys.ts';

export interface AuditLogOptions extends KeyOptions {
  /** Seal a checkpoint every N records or T ms (whichever first), and always on close. */
  checkpointEvery?: { entries?: number; ms?: number };
  /** Keep argument values (after `redact`), not only their hash. Default false. */
  recordArgs?: boolean;
  /** JSON Pointers removed from recorded argument values, e.g. `/password`, `/auth/token`. */
  redact?: string[];
  /** Rotate the active file into PATH.000001, ... once it passes this many bytes. Default 64 MiB; 0: never. */
  maxSegmentBytes?: number;
  /** Namespaced extension record types (`"myapp.approval"`) and the schema their fields must pass. */
  recordTypes?: Record<string, RecordTypeSchema>;
  /** Largest record line in bytes (default 1 MiB). Verdicts shed recorded argument values to fit. */
  maxRecordBytes?: number;
  /** ms since epoch; tests use it. */
  clock?: () => number;
  /**
   * A witness the log's host cannot rewind (DESIGN §14; e.g. RedisAuditAnchor): every checkpoint
   * also goes there. On open a log the witness knows a later (or another) checkpoint of is refused;
   * while the witness cannot take the newest checkpoint, appends are refused (see anchoring.ts).
   */
  anchor?: AuditAnchor;
  /**
   * Told when the log fails (it then takes no more appends), when the seal file cannot be
   * written, and when an anchor cannot take a checkpoint (and takes it again). Default: stderr,
   * since a failing audit log must not go unnoticed.
   */
  onWarning?: (message: string) => void;
}

// A hybrid checkpoint signature costs ~10-17 ms of CPU here (noble ML-DSA): 50k records between
// them costs ~3% of a core at 100k appends/s; 5 s bounds how long a record waits to be sealed.
export const DEFAULT_CHECKPOINT_EVERY = { entries: 50_000, ms: 5_000 } as const;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;
/** Records the log writes itself: never refused for size (a hybrid checkpoint is ~4.6 kB). */
const INTERNAL = new Set(['genesis', 'checkpoint', 'segment', 'recovery', 'resume', 'key']);

interface Deferred {
  body: RecordBody;
  resolve: (record: AuditRecord) => void;
  reject: (err: unknown) => void;
}

/**
 * The tamper-evident audit log: JSON Lines, each record hash-chained to the one before, sealed by
 * signed checkpoints. Implements the gate's AuditSink.
 *
 * Durability is group-committed (group-commit.ts): `append` encodes and chains the record at once
 * (so order is call order), queues its line, and resolves only after the write + fdatasync of the
 * batch holding it. While a checkpoint is being signed, new entries wait un-chained, so every
 * checkpoint seals exactly the records before it.
 */
export class AuditLog implements AuditSink {
  private readonly writer: GroupCommitWriter;
  private sealing: Promise<void> | undefined;
  private deferred: Deferred[] = [];
  private rotateAfterSeal = false;
  private sinceCheckpoint: number;
  private segmentBytes: number;
  private segment: number;
  private seqNext: number;
  private headHash: string;
  private failure: AuditError | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sealWrite: Promise<void> = Promise.resolve();
  private lastSeal: CheckpointRecord | undefined;
  private anchoring: CheckpointAnchoring | undefined;
  private readonly encoder: EntryEncoder;
  private readonly everyEntries: number;
  private readonly maxSegmentBytes: number;
  private readonly maxRecordBytes: number;
  private readonly clock: () => number;
  private readonly warn: OnWarning;

  private constructor(
    readonly path: string,
    readonly logId: string,
    private readonly signer: CheckpointSigner,
    private readonly lock: LogLock,
    fh: FileHandle,
    state: { nextSeq: number; head: string; segment: number; segmentBytes: number; sinceCheckpoint: number },
    opts: AuditLogOptions,
  ) {
    this.writer = new GroupCommitWriter(path, fh, state.nextSeq, (err, inFlight) => this.fail(err, inFlight));
    this.seqNext = state.nextSeq;
    this.headHash = state.head;
    this.segment = state.segment;
    this.segmentBytes = state.segmentBytes;
    this.sinceCheckpoint = state.sinceCheckpoint;
    this.clock = opts.clock ?? Date.now;
    this.warn = warningSink(opts.onWarning);
    this.encoder = new EntryEncoder({
      recordArgs: opts.recordArgs === true,
      redact: opts.redact ?? [],
      recordTypes: opts.recordTypes ?? {},
      clock: this.clock,
    });
    const every = { ...DEFAULT_CHECKPOINT_EVERY, ...opts.checkpointEvery };
    this.everyEntries = positive(every.entries, 'checkpointEvery.entries');
    const ms = positive(every.ms, 'checkpointEvery.ms');
    this.maxSegmentBytes =
      opts.maxSegmentBytes === 0 ? Infinity : positive(opts.maxSegmentBytes ?? DEFAULT_SEGMENT_BYTES, 'maxSegmentBytes');
    this.maxRecordBytes = positive(opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES, 'maxRecordBytes');
    if (Number.isFinite(ms)) {
      this.timer = setInterval(() => {
        if (this.sinceCheckpoint > 0 && !this.sealing && !this.failure) this.startSeal();
      }, ms);
      this.timer.unref();
    }
  }

  /**
   * Opens (or creates) the log at `path` for appending: takes the writer lock, checks the tail,
   * cuts a torn last line (recording the cut), and resumes the chain. Refuses a tail that fails.
   */
  static async open(path: string, opts: AuditLogOptions): Promise<AuditLog> {
    const signer = await resolveSigner(opts);
    if (!isCheckpointSigner(signer)) throw new TypeError('AuditLog.open: pass { keyPair, mode } (or a checkpoint signer)');
    const now = (opts.clock ?? Date.now)();
    if (signer.expiresAt !== undefined && now >= signer.expiresAt) {
      throw new AuditError(
        'LOG_FAILED',
        -1,
        `the checkpoint key ${signer.kid} expired at ${new Date(signer.expiresAt).toISOString()}; open the log with a current key`,
      );
    }
    // Directories made here are durable only once each entry is synced in its parent.
    const madeAs = await mkdir(dirname(path), { recursive: true });
    const made = madeAs === undefined ? undefined : await realpath(madeAs);
    // One name per log: a symlink to it (or to its directory) must meet the same lock.
    path = await resolveLogPath(path).catch((err: unknown) => {
      throw new AuditError('LOG_FAILED', -1, `audit log ${path}: ${(err as Error).message}`, { cause: err });
    });
    const lock = await LogLock.acquire(path);
    let fh: FileHandle | undefined;
    let log: AuditLog | undefined;
    let anchoring: CheckpointAnchoring | undefined;
    try {
      const { tail, cut, seal } = await recoverTail(path, { kid: signer.kid, verifier: signer.verifier });
      if (tail?.mode !== undefined && tail.mode !== signer.mode) {
        throw new AuditError(
          'MODE_MISMATCH',
          -1,
          `audit log ${path} is sealed in ${tail.mode} mode; it cannot be continued in ${signer.mode} mode`,
        );
      }
      const fresh = tail === undefined;
      const logId = tail?.logId ?? randomBytes(12).toString('base64url');
      // Before anything is written: a log the witness knows to be cut back is not continued.
      anchoring =
        opts.anchor === undefined
          ? undefined
          : await CheckpointAnchoring.start(
              opts.anchor,
              logId,
              { fresh, lastCheckpoint: tail?.lastCheckpoint },
              {
                warn: warningSink(opts.onWarning),
                fatal: (err) => log?.fail(err),
              },
            );
      fh = await open(path, 'a', 0o640);
      log = new AuditLog(path, logId, signer, lock, fh, stateOf(tail), opts);
      log.lastSeal = seal;
      log.anchoring = anchoring;
      if (fresh) {
        log.internal({ type: 'genesis', time: log.clock(), version: AUDIT_FORMAT_VERSION, mode: signer.mode, kid: signer.kid });
      } else if ((tail as TailState).activeBytes === 0) {
        // The active file was (re)created after a rotation: mark where this segment starts.
        log.internal({ type: 'segment', time: log.clock(), segment: log.segment + 1 });
      }
      if (cut) log.internal({ type: 'recovery', time: log.clock(), file: cut.file, cutBytes: cut.bytes, cutHash: cut.hash });
      // Records no checkpoint sealed before the stop: this writer cannot tell its own crash from
      // lines added while the log stood unlocked, and its next checkpoint will seal them. Say so.
      const unsealed = tail?.sinceCheckpoint ?? 0;
      if (!fresh && unsealed > 0)
        log.internal({ type: 'resume', time: log.clock(), from: (tail as TailState).nextSeq - unsealed, unsealed });
      if (!fresh && tail?.lastKid !== undefined && tail.lastKid !== signer.kid) {
        log.internal({
          type: 'key',
          time: log.clock(),
          event: 'audit_key_changed',
          kid: signer.kid,
          detail: `checkpoints were signed by ${tail.lastKid}`,
        });
      }
      await log.flush();
      if (fresh || (tail as TailState).activeBytes === 0) await syncDir(dirname(path));
      if (made !== undefined) await syncMadeDirs(made, dirname(path));
      return log;
    } catch (err) {
      anchoring?.stop();
      if (log?.timer) clearInterval(log.timer);
      await fh?.close().catch(() => undefined);
      await lock.release();
      throw err;
    }
  }

  /** Seq the next record will get (= records in the chain). */
  get size(): number {
    return this.seqNext;
  }

  /** Hash of the newest record. */
  get head(): string {
    return this.headHash;
  }

  get mode(): CheckpointMode {
    return this.signer.mode;
  }

  /** The newest durable checkpoint: keep a copy elsewhere to detect truncation later (`anchor`). */
  get lastCheckpoint(): CheckpointRecord | undefined {
    return this.lastSeal;
  }

  /** Records the entry; resolves with the record once it is durable (fsync). */
  append(entry: AuditEntry | GateEvent): Promise<AuditRecord> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new AuditError('LOG_CLOSED', -1, `audit log ${this.path} is closed`));
    const held = this.anchoring?.hold;
    if (held) return Promise.reject(held);
    let body: RecordBody;
    try {
      body = this.encoder.body(entry as AuditEntry);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      if (this.sealing) this.deferred.push({ body, resolve, reject });
      else this.enqueue(body, resolve, reject);
    });
  }

  /** Resolves when everything appended before the call is durable (later appends do not delay it). */
  async flush(): Promise<void> {
    // Entries waiting for a checkpoint get their place once it is signed.
    while (this.sealing) await this.sealing;
    if (this.failure) throw this.failure;
    const target = this.seqNext;
    if (this.writer.durableSeq >= target) return;
    await this.writer.whenDurable(target);
  }

  /** Seals a checkpoint now (if anything is unsealed) and waits until it is durable. */
  async checkpoint(): Promise<CheckpointRecord | undefined> {
    while (this.sealing) await this.sealing;
    if (this.sinceCheckpoint > 0) this.startSeal();
    await this.flush();
    await this.sealWrite;
    await this.anchoring?.settled();
    return this.lastSeal;
  }

  /**
   * Seals a final checkpoint, flushes, and releases the lock. Appends after this reject. Every call
   * resolves (or rejects) with the first: a second close (two shutdown paths) must not report the
   * log closed while its final checkpoint is still being signed.
   */
  close(): Promise<void> {
    this.closed ??= this.shutDown();
    return this.closed;
  }

  private async shutDown(): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    try {
      while (this.sealing) await this.sealing;
      if (!this.failure && this.sinceCheckpoint > 0) this.startSeal();
      await this.flush().catch(() => undefined);
      await this.sealWrite;
      await this.anchoring?.close();
    } finally {
      await this.writer.close().catch(() => undefined);
      await this.lock.release();
    }
    if (this.failure) throw this.failure;
  }

  // -------------------------------------------------------------------------------------------

  /**
   * A record the log writes itself on open. Any of them can start a seal (a checkpoint or a
   * rotation falls due): what follows must then wait for it like an append does, or the checkpoint
   * would sit after a record it does not seal.
   */
  private internal(body: RecordBody): void {
    if (this.sealing) this.deferred.push({ body, resolve: () => undefined, reject: () => undefined });
    else this.enqueue(body);
  }

  /** Chains a body at the head: assigns seq/prev, hashes, queues the line. */
  private enqueue(body: RecordBody, resolve?: (r: AuditRecord) => void, reject?: (e: unknown) => void): void {
    const record = body as RecordBody & { seq: number; prev: string; log: string; hash: string };
    record.seq = this.seqNext;
    record.prev = this.headHash;
    record.log = this.logId;
    let sealed: { hash: string; line: string };
    try {
      sealed = sealRecord(record);
      if (!INTERNAL.has(body.type) && this.overLimit(sealed.line)) sealed = this.shrink(record, Buffer.byteLength(sealed.line));
    } catch (err) {
      const e = err instanceof AuditError ? err : new AuditError('BAD_ENTRY', -1, `entry cannot be encoded: ${(err as Error).message}`);
      if (reject) reject(e);
      else this.fail(e);
      return;
    }
    record.hash = sealed.hash;
    const line = `${sealed.line}\n`;
    this.seqNext++;
    this.headHash = sealed.hash;
    this.segmentBytes += Buffer.byteLength(line);
    const pending: PendingLine = { line, record: record as unknown as AuditRecord };
    if (resolve) pending.resolve = resolve;
    if (reject) pending.reject = reject;
    this.writer.push(pending);
    if (body.type === 'checkpoint') this.sinceCheckpoint = 0;
    else this.sinceCheckpoint++;
    if (this.sinceCheckpoint >= this.everyEntries && !this.sealing) this.startSeal();
    else if (this.segmentBytes >= this.maxSegmentBytes && !this.sealing && body.type !== 'checkpoint') {
      this.rotateAfterSeal = true;
      this.startSeal();
    }
  }

  /** The limit is in bytes: a line of n UTF-16 code units is at most 3n bytes of UTF-8 (cheap test first). */
  private overLimit(line: string): boolean {
    return line.length > this.maxRecordBytes || (line.length * 3 > this.maxRecordBytes && Buffer.byteLength(line) > this.maxRecordBytes);
  }

  /** A record over the size limit: a verdict sheds its argument values (never refused); others are refused. */
  private shrink(record: RecordBody, size: number): { hash: string; line: string } {
    if (record.type !== 'verdict') {
      throw new AuditError(
        'RECORD_TOO_LARGE',
        -1,
        `a ${record.type} record of ${size} bytes is over the ${this.maxRecordBytes}-byte limit`,
      );
    }
    if (record.argsValue !== undefined) {
      delete record.argsValue;
      delete record.redacted;
      record.argsError = `argument values not recorded: the record would be ${size} bytes (limit ${this.maxRecordBytes})`;
    }
    return sealRecord(record);
  }

  /** Signs a checkpoint over everything chained so far; entries arriving meanwhile wait. */
  private startSeal(): void {
    if (this.sealing || this.failure) return;
    const size = this.seqNext;
    const head = this.headHash;
    const time = this.clock();
    this.sealing = (async () => {
      let sig: string;
      try {
        const expires = this.signer.expiresAt;
        if (expires !== undefined && time >= expires)
          throw new Error(`the checkpoint key ${this.signer.kid} expired at ${new Date(expires).toISOString()}`);
        sig = await this.signer.sign(CHECKPOINT_DOMAIN, checkpointMessage({ log: this.logId, size, head, time }));
      } catch (err) {
        this.fail(new AuditError('LOG_FAILED', -1, `checkpoint signing failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
        return;
      }
      this.enqueue({ type: 'checkpoint', time, size, head, mode: this.signer.mode, kid: this.signer.kid, sig }, (record) =>
        this.remember(record as CheckpointRecord),
      );
      // Not on close: the segment record would follow the final checkpoint, unsealed. Reopening rotates.
      if (!this.closing && (this.rotateAfterSeal || this.segmentBytes >= this.maxSegmentBytes)) {
        this.rotateAfterSeal = false;
        this.segment++;
        this.writer.rotateTo(this.segment);
        this.segmentBytes = 0;
        this.enqueue({ type: 'segment', time: this.clock(), segment: this.segment + 1 });
      }
    })().finally(() => {
      this.sealing = undefined;
      // Chain what waited, in order; one of them may start the next seal, the rest wait again.
      const waiting = this.deferred;
      this.deferred = [];
      let i = 0;
      for (; i < waiting.length && !this.sealing; i++) {
        const d = waiting[i] as Deferred;
        if (this.failure) d.reject(this.failure);
        else this.enqueue(d.body, d.resolve, d.reject);
      }
      // A new seal started part-way: the rest wait for it, ahead of anything newer.
      if (i < waiting.length) this.deferred = waiting.slice(i).concat(this.deferred);
    });
  }

  /** A checkpoint is durable: copy it to the seal file (in order, newest wins). */
  private remember(record: CheckpointRecord): void {
    this.lastSeal = record;
    this.anchoring?.checkpointed(record);
    const { line } = sealRecord(withoutHash(record));
    this.sealWrite = this.sealWrite
      .then(() => (this.lastSeal === record ? writeSeal(this.path, line) : undefined))
      .catch((err: unknown) => {
        this.warn(`could not write the audit seal file: ${String(err)}`);
      });
  }

  /** The log takes no more appends: everything waiting is rejected with the cause. */
  private fail(err: AuditError, inFlight: readonly PendingLine[] = []): void {
    if (!this.failure) {
      this.failure = err;
      this.warn(err.message);
    }
    const failure = this.failure;
    this.writer.abort(failure, inFlight);
    for (const d of this.deferred.splice(0)) d.reject(failure);
  }
}

/** Syncs the parent of every directory `mkdir -p` made, from the deepest up to the first one's parent. */
async function syncMadeDirs(first: string, deepest: string): Promise<void> {
  const stop = dirname(first);
  for (let d = dirname(deepest); ; d = dirname(d)) {
    await syncDir(d);
    if (d === stop || dirname(d) === d) return;
  }
}

function stateOf(tail: TailState | undefined): {
  nextSeq: number;
  head: string;
  segment: number;
  segmentBytes: number;
  sinceCheckpoint: number;
} {
  if (!tail) return { nextSeq: 0, head: ZERO_HASH, segment: 0, segmentBytes: 0, sinceCheckpoint: 0 };
  return {
    nextSeq: tail.nextSeq,
    head: tail.head,
    segment: tail.segments,
    segmentBytes: tail.activeBytes,
    sinceCheckpoint: tail.sinceCheckpoint,
  };
}

function withoutHash(record: AuditRecord): object {
  const { hash: _hash, ...rest } = record;
  return rest;
}

function positive(n: number, name: string): number {
  if (n === Infinity) return n;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new TypeError(`${name} must be a positive number`);
  return n;
}
