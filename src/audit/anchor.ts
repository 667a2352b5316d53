import { hash as digest } from 'node:crypto';
import type { CheckpointRecord } from './record.ts';

/**
 * A witness for a log's checkpoints, kept where the log's host cannot quietly rewind it (DESIGN
 * §14). The host holds the checkpoint key, so it can cut its log back to an earlier checkpoint, or
 * rewrite and re-sign it, and rebuild the seal file to match: only a copy kept elsewhere, which
 * never goes backwards, shows that. Redis is one witness (RedisAuditAnchor in `kavach/redis`); a
 * remote HTTP endpoint or an object store with write-once keys fits the same four calls.
 */
export interface AuditAnchor {
  /**
   * Keeps `checkpoint` as the log's newest, unless the witness already holds a later one (or a
   * different one at the same seq): then it is refused and the witness keeps what it held. Taking
   * the same checkpoint twice is accepted (a retry). Rejects only when the witness cannot answer.
   */
  record(checkpoint: AnchorCheckpoint): Promise<AnchorResult>;
  /** The newest checkpoint the witness holds for `logId`, or undefined when it holds none. */
  latest(logId: string): Promise<AnchorCheckpoint | undefined>;
  /**
   * Every checkpoint of `logId` the witness took with `fromSeq <= seq <= toSeq`, oldest first,
   * so a verifier can check each earlier checkpoint the log presents (the newest alone would let a
   * host rewrite anything before it and re-sign from there).
   */
  history(logId: string, fromSeq: number, toSeq: number): Promise<AnchoredCheckpoint[]>;
  close(): Promise<void>;
}

/** What a checkpoint record signs, plus its signature: enough to check it against any copy of the log. */
export interface AnchorCheckpoint {
  logId: string;
  /** Seq of the checkpoint record (= how many records it seals: 0..seq-1). */
  seq: number;
  /** Hash of the last record it seals (the checkpoint's signed `head`). */
  headHash: string;
  /** The checkpoint's signature envelope over (log, size = seq, head, time). */
  signature: string;
  /** The checkpoint's `time` (ms since epoch). */
  time: number;
}

/**
 * An earlier checkpoint as history keeps it: the signature's SHA-256 stands for the signature
 * (a hybrid one is ~4.4 kB; a busy log seals every 5 s), which still tells a re-signed checkpoint apart.
 */
export interface AnchoredCheckpoint {
  seq: number;
  headHash: string;
  time: number;
  /** SHA-256 (base64url) of the UTF-8 signature envelope. */
  signatureDigest: string;
}

export type AnchorResult =
  | { accepted: true }
  /** `behind`: the witness holds a later checkpoint; `conflict`: a different one at the same seq. */
  | { accepted: false; reason: 'behind' | 'conflict'; held: { seq: number; headHash: string } };

export function isAuditAnchor(x: unknown): x is AuditAnchor {
  const a = x as Partial<AuditAnchor> | null | undefined;
  return typeof a?.record === 'function' && typeof a.latest === 'function' && typeof a.history === 'function';
}

export function anchorCheckpointOf(record: CheckpointRecord): AnchorCheckpoint {
  return { logId: record.log, seq: record.seq, headHash: record.head, signature: record.sig, time: record.time };
}

export function signatureDigest(signature: string): string {
  return digest('sha256', signature, 'base64url');
}

const HASH = /^[A-Za-z0-9_-]{43}$/;

/** Checks a checkpoint before it goes to a witness (an implementation's first line of defence). */
export function checkAnchorCheckpoint(c: AnchorCheckpoint): void {
  if (typeof c?.logId !== 'string' || c.logId.length === 0 || c.logId.length > 256)
    throw new TypeError('anchor checkpoint: logId must be a non-empty string');
  if (!Number.isSafeInteger(c.seq) || c.seq < 0) throw new TypeError('anchor checkpoint: seq must be a non-negative integer');
  if (typeof c.headHash !== 'string' || !HASH.test(c.headHash)) throw new TypeError('anchor checkpoint: headHash must be a record hash');
  if (typeof c.signature !== 'string' || c.signature.length === 0)
    throw new TypeError('anchor checkpoint: signature must be a non-empty string');
  if (typeof c.time !== 'number' || !Number.isFinite(c.time)) throw new TypeError('anchor checkpoint: time must be a finite number (ms)');
}
