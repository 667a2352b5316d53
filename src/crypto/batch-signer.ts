/**
 * Batch signing: permits issued within a short window share one signature over the root of a
 * Merkle tree of their claims (see merkle.ts, batch-proof.ts and docs/batch-signing.md).
 *
 * A batch closes when it reaches `maxSize`, or `maxDelayMs` after its first permit — but only
 * when a signer is free: while every signer is busy the open batch keeps filling (up to maxSize),
 * so under load batches grow instead of queueing, and the delay a permit sees stays near one
 * signature time.
 */
import { toBase64Url } from './encoding.ts';
import { MAX_BATCH, encodeProof, rootMessage } from './batch-proof.ts';
import { buildTree } from './merkle.ts';
import { joinBatchToken } from './permit-token.ts';

export interface BatchOptions {
  /** Longest a permit waits for its batch to close (default 5 ms). */
  maxDelayMs?: number;
  /** Most permits under one signature (default 512; at most 65,536). */
  maxSize?: number;
  /**
   * Batch roots being signed at once (default: the pool's size minus one, at least one). At high
   * rates the event loop itself needs a core — building trees, finishing verdicts — and batches
   * grow to absorb the load, so more root signers mostly compete with it for CPU.
   */
  concurrency?: number;
}

interface Pending {
  claims: Uint8Array;
  resolve: (token: string) => void;
  reject: (err: Error) => void;
}

/** Signs a batch root message; resolves to the base64url envelope. */
export type RootSigner = (message: Uint8Array) => Promise<string>;

export class PermitBatcher {
  readonly maxDelayMs: number;
  readonly maxSize: number;
  readonly #signRoot: RootSigner;
  readonly #concurrency: number;
  #open: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #due = false;
  #inFlight = 0;
  readonly #settled = new Set<Promise<void>>();

  constructor(signRoot: RootSigner, opts: BatchOptions, concurrency: number) {
    const maxDelayMs = opts.maxDelayMs ?? 5;
    const maxSize = opts.maxSize ?? 512;
    if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0 || maxDelayMs > 60_000)
      throw new TypeError('batch.maxDelayMs must be a number of ms from 0 to 60000');
    if (!Number.isSafeInteger(maxSize) || maxSize < 1 || maxSize > MAX_BATCH)
      throw new TypeError(`batch.maxSize must be an integer from 1 to ${MAX_BATCH}`);
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 256)
      throw new TypeError('batch.concurrency must be an integer from 1 to 256');
    this.maxDelayMs = maxDelayMs;
    this.maxSize = maxSize;
    this.#signRoot = signRoot;
    this.#concurrency = concurrency;
  }

  /** Adds canonical claims bytes; resolves to the batch token once its batch is signed. */
  add(claims: Uint8Array): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#open.push({ claims, resolve, reject });
      if (this.#open.length >= this.maxSize) this.#seal();
      else if (!this.#timer && !this.#due) this.#timer = setTimeout(() => this.#onTimer(), this.maxDelayMs);
    });
  }

  /** Signs what is open and waits for every batch in flight. */
  async flush(): Promise<void> {
    if (this.#open.length > 0) this.#seal();
    while (this.#settled.size > 0) await Promise.all(this.#settled);
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#inFlight < this.#concurrency) this.#seal();
    else this.#due = true;
  }

  #seal(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = false;
    const batch = this.#open.splice(0, this.maxSize);
    if (this.#open.length > 0) this.#timer = setTimeout(() => this.#onTimer(), this.maxDelayMs);
    if (batch.length === 0) return;
    this.#inFlight++;
    const done = this.#sign(batch).finally(() => {
      this.#inFlight--;
      this.#settled.delete(done);
      if (this.#due && this.#open.length > 0) this.#seal();
    });
    this.#settled.add(done);
  }

  async #sign(batch: Pending[]): Promise<void> {
    try {
      const { root, paths } = buildTree(batch.map((p) => p.claims));
      const envelope = await this.#signRoot(rootMessage(batch.length, root));
      batch.forEach((p, i) => {
        p.resolve(joinBatchToken(p.claims, toBase64Url(encodeProof(batch.length, i, paths[i] as Uint8Array[])), envelope));
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const p of batch) p.reject(error);
    }
  }
}
