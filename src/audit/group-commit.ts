import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AuditError } from './errors.ts';
import { segmentPath, syncDir } from './files.ts';
import type { AuditRecord } from './record.ts';

/** A chained record's line, and who waits for it to be durable. */
export interface PendingLine {
  line: string;
  record: AuditRecord;
  resolve?: (record: AuditRecord) => void;
  reject?: (err: unknown) => void;
}

/** Close the active file as rotated segment `rotate` before writing what follows. */
interface Rotate {
  rotate: number;
}
type QueueItem = PendingLine | Rotate;

/**
 * The durable half of the audit log: writes chained lines in order and resolves each only after
 * the write + fdatasync of the batch holding it. Lines queued while one batch is being synced go
 * out together in the next, so a thousand concurrent appenders share one fsync. It knows nothing
 * of chaining or checkpoints (audit-log.ts): it writes what it is given, in the order given.
 */
export class GroupCommitWriter {
  private queue: QueueItem[] = [];
  private flushing = false;
  /** Seq after the newest durable record, and who waits for it to pass a mark. */
  private durableNext: number;
  private waiters: Array<{ target: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  private failure: AuditError | undefined;

  /**
   * `nextSeq`: the seq the first line written will carry. `onWriteFailure` hears a failed write or
   * sync with the batch that was in flight; it is expected to `abort` the writer.
   */
  constructor(
    private readonly path: string,
    private fh: FileHandle,
    nextSeq: number,
    private readonly onWriteFailure: (err: AuditError, inFlight: readonly PendingLine[]) => void,
  ) {
    this.durableNext = nextSeq;
  }

  /** Seq after the newest durable record. */
  get durableSeq(): number {
    return this.durableNext;
  }

  /** Queues a line for the next batch. */
  push(pending: PendingLine): void {
    if (this.failure) {
      pending.reject?.(this.failure);
      return;
    }
    this.queue.push(pending);
    if (!this.flushing) {
      this.flushing = true;
      // setImmediate, not a microtask: lets every caller resumed by the last batch append first.
      setImmediate(() => void this.runFlush());
    }
  }

  /** Closes the active file as segment `n` once everything queued before it is durable. */
  rotateTo(n: number): void {
    this.queue.push({ rotate: n });
  }

  /** Resolves once every record before seq `target` is durable; rejects if the writer fails first. */
  whenDurable(target: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.durableNext >= target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.waiters.push({ target, resolve, reject }));
  }

  /** Writes nothing more: the lines in flight and queued, and everyone waiting, are rejected with `failure`. */
  abort(failure: AuditError, inFlight: readonly PendingLine[] = []): void {
    const first = (this.failure ??= failure);
    for (const item of [...inFlight, ...this.queue]) if ('line' in item) item.reject?.(first);
    this.queue = [];
    for (const w of this.waiters.splice(0)) w.reject(first);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  private async runFlush(): Promise<void> {
    let batch: QueueItem[] = [];
    try {
      while (this.queue.length > 0 && !this.failure) {
        batch = this.queue;
        this.queue = [];
        let text = '';
        for (const item of batch) {
          if ('rotate' in item) {
            await this.write(text);
            text = '';
            await this.rotate(item.rotate);
          } else {
            text += item.line;
          }
        }
        await this.write(text);
        await this.fh.datasync();
        for (const item of batch) {
          if (!('line' in item)) continue;
          this.durableNext = item.record.seq + 1;
          item.resolve?.(item.record);
        }
        batch = [];
        this.wakeWaiters();
      }
    } catch (err) {
      const lines = batch.filter((item): item is PendingLine => 'line' in item);
      this.onWriteFailure(
        new AuditError('LOG_FAILED', -1, `audit log ${this.path}: write failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }),
        lines,
      );
    } finally {
      this.flushing = false;
      if (this.queue.length > 0 && !this.failure) {
        this.flushing = true;
        setImmediate(() => void this.runFlush());
      }
    }
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.target <= this.durableNext) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private async write(text: string): Promise<void> {
    if (text.length === 0) return;
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
  }

  /** Closes the sealed segment as PATH.00000N and starts a fresh active file. */
  private async rotate(n: number): Promise<void> {
    await this.fh.datasync();
    await this.fh.close();
    await rename(this.path, segmentPath(this.path, n));
    this.fh = await open(this.path, 'a', 0o640);
    await syncDir(dirname(this.path));
  }
}
