import { anchorCheckpointOf, type AuditAnchor } from './anchor.ts';
import { AuditError } from './errors.ts';
import type { CheckpointRecord } from './record.ts';

/**
 * The writer's side of anchoring: every durable checkpoint goes to the witness, in order (only the
 * newest waiting one is sent: it vouches for everything before it).
 *
 * Fail closed, with a bounded window. A checkpoint reaches the witness after the records it seals
 * were written (and their permits given), so the records since the last anchored checkpoint are
 * never witnessed yet; that window is one checkpoint interval. When the witness cannot take a
 * checkpoint, the window would grow without bound, so the log stops taking appends (`hold`: the
 * gate then refuses every call, STORE_UNAVAILABLE) and retries with backoff; once the witness takes
 * the newest checkpoint, appends resume. A witness that refuses (it holds a later checkpoint, or a
 * different one at that seq) proves this log was cut back or rewritten: the log stops for good.
 */
export class CheckpointAnchoring {
  /** What still has to reach the witness; `null`: the check that it holds nothing for a never-sealed log. */
  private due: CheckpointRecord | null | undefined;
  private holding: AuditError | undefined;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private closing = false;
  private stopped = false;

  private constructor(
    private readonly anchor: AuditAnchor,
    private readonly logId: string,
    private readonly opts: AnchoringOptions,
  ) {
    this.delayMs = opts.retryMs?.min ?? RETRY_MIN_MS;
  }

  /**
   * Checks a reopened log against the witness before anything is written: its newest checkpoint
   * is sent (taken, or already held: fine; refused: the log was cut back or rewritten, and this
   * throws). A witness that cannot be reached leaves the log holding appends until it can.
   */
  static async start(
    anchor: AuditAnchor,
    logId: string,
    tail: { fresh: boolean; lastCheckpoint: CheckpointRecord | undefined },
    opts: AnchoringOptions,
  ): Promise<CheckpointAnchoring> {
    const a = new CheckpointAnchoring(anchor, logId, opts);
    if (tail.fresh) return a;
    const due = tail.lastCheckpoint ?? null;
    try {
      await a.attempt(due);
    } catch (err) {
      if (err instanceof Refused) throw err.error;
      a.due = due;
      a.holdAppends(due, err);
    }
    return a;
  }

  /** Why appends are refused now (the witness has not taken the newest checkpoint), or undefined. */
  get hold(): AuditError | undefined {
    return this.holding;
  }

  /** A checkpoint is durable in the log: send it. */
  checkpointed(record: CheckpointRecord): void {
    if (this.stopped) return;
    this.due = record;
    this.kick();
  }

  /** Resolves once nothing is being sent (taken, or failed and holding). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Waits for the checkpoint in flight (the log's final one on close); no retries after this. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    await this.settled();
    if (this.due !== undefined && !this.stopped) {
      const seq = this.due === null ? 'none' : `seq ${this.due.seq}`;
      this.opts.warn(
        `the audit anchor did not take the log's newest checkpoint (${seq}) before close; the next open sends it, and until then verification against the anchor reports the records after the last anchored checkpoint as not anchored`,
      );
    }
    this.stopped = true;
  }

  /** Stops retrying at once (the log failed to open). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  // -------------------------------------------------------------------------------------------

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      // A checkpoint that arrived as the last send finished.
      if (this.due !== undefined && this.holding === undefined) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.due !== undefined && !this.stopped) {
      const due = this.due;
      try {
        await this.attempt(due);
      } catch (err) {
        if (err instanceof Refused) {
          this.stop();
          this.holding = err.error;
          this.opts.fatal(err.error);
        } else {
          this.holdAppends(due, err);
        }
        return;
      }
      if (this.due === due) this.due = undefined;
      if (this.holding !== undefined) this.opts.warn(`the audit anchor took checkpoint ${describe(due)}: appends resume`);
      this.holding = undefined;
      this.delayMs = this.opts.retryMs?.min ?? RETRY_MIN_MS;
    }
  }

  /** One try. Throws Refused when the witness contradicts the log (never retried); anything else is an outage. */
  private async attempt(due: CheckpointRecord | null): Promise<void> {
    if (due === null) {
      const held = await this.anchor.latest(this.logId);
      if (held !== undefined) {
        throw new Refused(
          new AuditError(
            'TRUNCATED',
            -1,
            `the audit anchor holds checkpoint seq ${held.seq} of log ${this.logId}, but this log has no checkpoint: it was cut back (or replaced by an older copy), so it is not continued`,
          ),
        );
      }
      return;
    }
    const result = await this.anchor.record(anchorCheckpointOf(due));
    if (result?.accepted === true) return;
    if (result?.accepted !== false) throw new Error('the audit anchor gave no answer');
    throw new Refused(
      result.reason === 'behind'
        ? new AuditError(
            'TRUNCATED',
            -1,
            `the audit anchor holds checkpoint seq ${result.held.seq} of log ${this.logId}, later than this log's newest at seq ${due.seq}: the log was cut back (or replaced by an older copy), so it is not continued`,
          )
        : new AuditError(
            'ANCHOR_MISMATCH',
            -1,
            `the audit anchor holds a different checkpoint at seq ${due.seq} of log ${this.logId}: the log was rewritten, so it is not continued`,
          ),
    );
  }

  private holdAppends(due: CheckpointRecord | null, err: unknown): void {
    const why = (err as Error)?.message ?? String(err);
    if (this.holding === undefined) {
      this.holding = new AuditError(
        'ANCHOR_UNAVAILABLE',
        -1,
        `the audit anchor has not taken checkpoint ${describe(due)} (${why}): nothing more is recorded, so nothing is permitted, until it does`,
        { cause: err },
      );
      this.opts.warn(`${this.holding.message}; retrying`);
    }
    if (this.closing || this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, this.delayMs);
    this.timer.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.opts.retryMs?.max ?? RETRY_MAX_MS);
  }
}

export interface AnchoringOptions {
  warn: (message: string) => void;
  /** The witness contradicts the log: it must take no more appends. */
  fatal: (err: AuditError) => void;
  /** Backoff between tries while the witness is unreachable (default 100 ms doubling to 5 s). */
  retryMs?: { min: number; max: number };
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** A witness's answer that contradicts the log (not an outage). */
class Refused extends Error {
  constructor(readonly error: AuditError) {
    super(error.message);
  }
}

function describe(due: CheckpointRecord | null): string {
  return due === null ? '(none: the log was never sealed)' : `seq ${due.seq}`;
}
