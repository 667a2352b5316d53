/**
 * A pool of worker threads that sign envelopes, so ML-DSA-65 (milliseconds per signature in pure
 * JS) never blocks the caller's event loop. Workers start lazily, up to `size` (default: the
 * number of cores); each receives a signing key's secret bytes once, by transfer, the first time
 * it signs with that key. Idle workers are unref'd: a pool never keeps a process alive.
 *
 * A worker that dies rejects the jobs it held (the gate turns that into Refuse SIGNING_FAILED)
 * and is replaced on the next job. A worker that dies before it ever starts also fails the
 * queued jobs, so a broken install fails closed instead of respawning forever.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { toBase64Url } from './encoding.ts';
import type { KeyPair } from './keys.ts';
import type { SignatureMode } from './signatures.ts';

export interface SigningPoolOptions {
  /** Worker threads (default: the number of cores). */
  size?: number;
  /**
   * Jobs waiting for a worker before new ones are refused (default 4096): past that, a permit
   * would wait longer than it lives, so the caller gets a fast SIGNING_FAILED instead.
   */
  maxQueue?: number;
  /** Jobs handed to one worker before it answers (default 2: hides the message round trip). */
  perWorker?: number;
  /**
   * Linux: the workers' nice value (default 0). Above 0, the event loop wins when it and the
   * signing threads compete for a core (e.g. as many workers as cores). Ignored elsewhere, where
   * it would renice the whole process.
   */
  nice?: number;
  /** @internal tests: CommonJS source run as the worker instead of signing-worker. */
  _workerSource?: string;
}

type Reply = { t: 'ready' } | { t: 'ok'; id: number; envelope: Uint8Array } | { t: 'err'; id: number; message: string };

interface Job {
  id: number;
  kp: KeyPair;
  mode: SignatureMode;
  domain: string;
  message: Uint8Array;
  resolve: (envelope: Uint8Array) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  kids: Set<string>;
  jobs: Map<number, Job>;
}

/**
 * How to start signing-worker: plain JS from dist/; in a source checkout, a bootstrap that
 * registers tsx in the worker and then imports the TypeScript (`--import tsx` in a worker's
 * execArgv does not apply tsx's hooks to the worker's entry on Node 20).
 */
function startWorker(nice: number): Worker {
  const workerData = { nice: process.platform === 'linux' ? nice : 0 };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./signing-worker.js', import.meta.url), { execArgv: [], workerData });
  const tsxDir = createRequire(import.meta.url)
    .resolve('tsx/package.json')
    .replace(/package\.json$/, '');
  const api = pathToFileURL(`${tsxDir}dist/esm/api/index.mjs`).href;
  const entry = new URL('./signing-worker.ts', import.meta.url).href;
  const boot =
    `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })` +
    '.catch((e) => { process.nextTick(() => { throw e; }); });';
  return new Worker(boot, { eval: true, execArgv: [], workerData });
}

let shared: SigningPool | undefined;
let sharedUsers = 0;
const sharedKids = new Map<string, number>();

export class SigningPool {
  readonly size: number;
  readonly #perWorker: number;
  readonly #maxQueue: number;
  readonly #nice: number;
  readonly #workerSource: string | undefined;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  #crashNext = false;

  constructor(opts: SigningPoolOptions = {}) {
    // Default: one thread per core, capped at the largest pool allowed (a 384-core host must not
    // make every default PermitSigner throw).
    const size = opts.size ?? Math.min(availableParallelism(), 256);
    const perWorker = opts.perWorker ?? 2;
    if (!Number.isSafeInteger(size) || size < 1 || size > 256) throw new TypeError('SigningPool size must be an integer from 1 to 256');
    if (!Number.isSafeInteger(perWorker) || perWorker < 1 || perWorker > 64)
      throw new TypeError('SigningPool perWorker must be an integer from 1 to 64');
    const maxQueue = opts.maxQueue ?? 4096;
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 0) throw new TypeError('SigningPool maxQueue must be a non-negative integer');
    const nice = opts.nice ?? 0;
    if (!Number.isSafeInteger(nice) || nice < 0 || nice > 19) throw new TypeError('SigningPool nice must be an integer from 0 to 19');
    this.size = size;
    this.#perWorker = perWorker;
    this.#maxQueue = maxQueue;
    this.#nice = nice;
    this.#workerSource = opts._workerSource;
  }

  /**
   * The process-wide pool PermitSigners use by default. Each user takes it with acquireShared()
   * and gives it back with releaseShared(); the last one out closes it (a later user starts a new one).
   */
  static acquireShared(kid: string): SigningPool {
    if (!shared || shared.#closed) {
      shared = new SigningPool();
      sharedUsers = 0;
      sharedKids.clear();
    }
    sharedUsers++;
    sharedKids.set(kid, (sharedKids.get(kid) ?? 0) + 1);
    return shared;
  }

  /** Gives the shared pool back; workers drop a key no remaining user signs with. */
  static async releaseShared(pool: SigningPool, kid: string): Promise<void> {
    if (pool !== shared) return;
    sharedUsers--;
    const users = (sharedKids.get(kid) ?? 1) - 1;
    if (users > 0) sharedKids.set(kid, users);
    else {
      sharedKids.delete(kid);
      pool.forget(kid);
    }
    if (sharedUsers > 0) return;
    shared = undefined;
    await pool.close();
  }

  /** Workers started and alive. */
  get workers(): number {
    return this.#slots.length;
  }

  /** Signs on a worker; resolves to the binary envelope (see signatures.ts). */
  signBytes(kp: KeyPair, mode: SignatureMode, domain: string, message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error('the signing pool is closed'));
    if (!(message instanceof Uint8Array)) return Promise.reject(new TypeError('message must be a Uint8Array'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, kp, mode, domain, message, resolve, reject });
      this.#pump();
      // maxQueue bounds the jobs left waiting once every free worker took one: a job a worker can
      // take now never counts (so maxQueue 0 means "never wait", not "never sign").
      if (this.#queue.length > this.#maxQueue) {
        this.#queue.pop();
        reject(new Error(`the signing queue is full (${this.#queue.length} waiting)`));
      }
    });
  }

  /** signEnvelope off the event loop: same bytes, same base64url envelope. */
  async signEnvelope(kp: KeyPair, mode: SignatureMode, domain: string, message: Uint8Array): Promise<string> {
    return toBase64Url(await this.signBytes(kp, mode, domain, message));
  }

  /** Workers drop their copy of this key (it is sent again if used again). */
  forget(kid: string): void {
    for (const slot of this.#slots) {
      if (slot.kids.delete(kid)) slot.worker.postMessage({ t: 'forget', kid });
    }
  }

  /** Rejects queued jobs, terminates the workers (their in-flight jobs reject too). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new Error('the signing pool is closed'));
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }

  /** @internal test hook: the worker that takes the next job throws while handling it. */
  _crashNextJobForTest(): void {
    this.#crashNext = true;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#leastBusy();
      if (!slot || slot.jobs.size >= this.#perWorker) {
        if (this.#slots.length < this.size) {
          try {
            slot = this.#spawn();
          } catch (err) {
            // new Worker throws when no thread can be started (ERR_WORKER_INIT_FAILED). pump runs
            // inside worker event handlers too, where a throw would crash the process. Running
            // workers will pump again when they answer; with none, fail what waits (closed).
            if (this.#slots.length === 0) {
              const why = new Error(`cannot start a signing worker: ${(err as Error)?.message ?? String(err)}`);
              for (const job of this.#queue.splice(0)) job.reject(why);
            }
            return;
          }
        } else if (!slot || slot.jobs.size >= this.#perWorker) return;
      }
      this.#dispatch(slot, this.#queue.shift() as Job);
    }
  }

  #leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.#slots) if (!best || s.jobs.size < best.jobs.size) best = s;
    return best;
  }

  #dispatch(slot: Slot, job: Job): void {
    const { kid } = job.kp;
    try {
      if (!slot.kids.has(kid)) {
        const secret = job.kp.toSecretBytes();
        slot.worker.postMessage({ t: 'key', kid, secret }, [secret.buffer as ArrayBuffer]);
        slot.kids.add(kid);
      }
      const crash = this.#crashNext;
      this.#crashNext = false;
      // Copy: the caller keeps its bytes, and a copy is what postMessage makes anyway.
      slot.worker.postMessage({ t: 'sign', id: job.id, kid, mode: job.mode, domain: job.domain, message: job.message, crash });
    } catch (err) {
      job.reject(err as Error);
      return;
    }
    if (slot.jobs.size === 0) slot.worker.ref();
    slot.jobs.set(job.id, job);
  }

  #spawn(): Slot {
    const worker =
      this.#workerSource === undefined ? startWorker(this.#nice) : new Worker(this.#workerSource, { eval: true, execArgv: [] });
    worker.unref();
    const slot: Slot = { worker, ready: false, kids: new Set(), jobs: new Map() };
    this.#slots.push(slot);
    let lastError: Error | undefined;
    worker.on('message', (reply: Reply) => {
      if (reply.t === 'ready') {
        slot.ready = true;
        return;
      }
      const job = slot.jobs.get(reply.id);
      if (!job) return;
      slot.jobs.delete(reply.id);
      if (slot.jobs.size === 0) worker.unref();
      if (reply.t === 'ok') job.resolve(reply.envelope);
      else job.reject(new Error(reply.message));
      this.#pump();
    });
    worker.on('error', (err) => {
      lastError = err;
    });
    worker.on('exit', (code) => {
      const at = this.#slots.indexOf(slot);
      if (at >= 0) this.#slots.splice(at, 1);
      const why = `signing worker exited (code ${code}${lastError ? `: ${lastError.message}` : ''})`;
      for (const job of slot.jobs.values()) job.reject(new Error(why));
      slot.jobs.clear();
      if (this.#closed) return;
      if (!slot.ready) {
        // It never started: the next one would not either. Fail what waits; retry on the next job.
        for (const job of this.#queue.splice(0)) job.reject(new Error(why));
        return;
      }
      this.#pump();
    });
    return slot;
  }
}
