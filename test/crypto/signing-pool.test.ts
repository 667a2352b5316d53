import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import type { PermitRequest } from '../../src/engine/ports.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { SigningPool } from '../../src/crypto/signing-pool.ts';
import { verifyEnvelope } from '../../src/crypto/signatures.ts';
import { T0 } from './helpers.ts';

// Lets a test fake the host's core count, or make starting a worker thread fail; off otherwise.
const fault = vi.hoisted(() => ({ cores: undefined as number | undefined, failWorker: false }));
vi.mock('node:worker_threads', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:worker_threads')>();
  class Worker extends orig.Worker {
    constructor(...args: ConstructorParameters<typeof orig.Worker>) {
      // What node throws when uv_thread_create fails (thread limit, memory).
      if (fault.failWorker) throw Object.assign(new Error('Worker initialization failure (simulated)'), { code: 'ERR_WORKER_INIT_FAILED' });
      super(...args);
    }
  }
  return { ...orig, Worker };
});
vi.mock('node:os', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:os')>();
  return { ...orig, availableParallelism: () => fault.cores ?? orig.availableParallelism() };
});

const POLICY = { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read*' }] }] };
const CTX = { principalId: 'alice', principalKind: 'agent', actionName: 'fs.read_file', params: { path: '/a' }, audience: 'fs' } as const;

let kp: KeyPair;
let pool: SigningPool; // one worker: a crash takes down the only signer there is
const now = T0;

function request(i = 0): PermitRequest {
  return {
    principalId: 'alice',
    principalKind: 'agent',
    action: 'fs.read_file',
    args: { i },
    evaluationId: `e-${i}`,
    audience: 'fs',
    issuedAt: now,
    expiresAt: now + 30_000,
  };
}

function tool(): PermitVerifier {
  return new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'fs', clock: () => now });
}

beforeAll(() => {
  kp = KeyPair.generate({ now: T0 });
  pool = new SigningPool({ size: 1 });
});

afterAll(async () => {
  await pool.close();
});
afterEach(() => {
  fault.cores = undefined;
  fault.failWorker = false;
});

describe('the signing pool', () => {
  it('signs envelopes off-thread that verify like on-thread ones, in any domain', async () => {
    const message = new TextEncoder().encode('checkpoint 42');
    const envelope = await pool.signEnvelope(kp, 'hybrid', 'audit-checkpoint', message);
    await expect(verifyEnvelope(kp.publicKeys(), 'hybrid', 'audit-checkpoint', message, envelope, { now })).resolves.toEqual({
      kid: kp.kid,
    });
  });

  it('never blocks the event loop: a ticker keeps turning between the completions of a burst of signs', async () => {
    /** Events of a 24-permit burst, with a setImmediate ticker running meanwhile. */
    const run = async (signer: PermitSigner): Promise<string[]> => {
      const events: string[] = [];
      let ticking = true;
      const tick = () => {
        events.push('tick');
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          signer.issue(request(i)).then(() => {
            events.push('signed');
          }),
        ),
      );
      ticking = false;
      await new Promise((resolve) => setImmediate(resolve));
      return events;
    };
    const ticksDuring = (events: string[]) =>
      events.slice(events.indexOf('signed'), events.lastIndexOf('signed')).filter((e) => e === 'tick').length;
    const pooled = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool });
    await pooled.issue(request()); // the worker is up
    expect(ticksDuring(await run(pooled))).toBeGreaterThan(0);
    // Control: signing on the calling thread finishes the whole burst without the loop turning once.
    const inline = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool: false });
    const events = await run(inline);
    expect(ticksDuring(events)).toBe(0);
    expect(events.filter((e) => e === 'signed')).toHaveLength(24);
  });

  it('a worker crash mid-sign refuses that permit with SIGNING_FAILED; the worker is replaced and the next permit is signed', async () => {
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool });
    const gate = Gate.fromDict(POLICY, { signer, clock: () => now, drift: false });
    const ok = await gate.evaluate(CTX);
    expect(ok.kind).toBe('permit');
    pool._crashNextJobForTest();
    const crashed = await gate.evaluate(CTX);
    expect(crashed).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED', evaluator: 'signer' });
    expect(crashed.kind === 'refuse' && crashed.reason).toMatch(/signing worker exited/);
    const next = await gate.evaluate(CTX);
    expect(next.kind).toBe('permit');
    await tool().verify((next as { permit: string }).permit, { action: 'fs.read_file', args: { path: '/a' } });
    expect(pool.workers).toBe(1);
  });

  it('a crash while a batch root is signed refuses every permit of that batch; the next batch is signed', async () => {
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool, batch: { maxSize: 4, maxDelayMs: 10_000 } });
    const gate = Gate.fromDict(POLICY, { signer, clock: () => now, drift: false });
    pool._crashNextJobForTest();
    const first = await Promise.all(Array.from({ length: 4 }, () => gate.evaluate(CTX)));
    expect(first.map((v) => v.kind === 'refuse' && v.code)).toEqual(Array(4).fill('SIGNING_FAILED'));
    const second = await Promise.all(Array.from({ length: 4 }, () => gate.evaluate(CTX)));
    for (const v of second) await tool().verify((v as { permit: string }).permit, { action: 'fs.read_file', args: { path: '/a' } });
  });

  it('a worker that cannot start fails the waiting permits (fail closed) instead of respawning forever', async () => {
    const broken = new SigningPool({ size: 2, _workerSource: 'throw new Error("cannot load the signing module")' });
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool: broken });
    const gate = Gate.fromDict(POLICY, { signer, clock: () => now, drift: false });
    const verdicts = await Promise.all(Array.from({ length: 5 }, () => gate.evaluate(CTX)));
    for (const v of verdicts) {
      expect(v).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED' });
      expect(v.kind === 'refuse' && v.reason).toMatch(/cannot load the signing module/);
    }
    expect(broken.workers).toBe(0);
    // Still answering, still failing closed.
    expect(await gate.evaluate(CTX)).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED' });
    await broken.close();
  });

  it('refuses at once, rather than queue without bound, when more permits wait than maxQueue', async () => {
    const small = new SigningPool({ size: 1, perWorker: 1, maxQueue: 2 });
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'pq', pool: small });
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => signer.issue(request(i))));
    // One on the worker, two queued, two refused.
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect((results[3] as PromiseRejectedResult).reason.message).toMatch(/signing queue is full/);
    await small.close();
  });

  it('close() terminates the workers; the pool then refuses work, and a closed signer refuses to issue', async () => {
    const own = new SigningPool({ size: 2 });
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'pq', pool: own });
    await Promise.all([signer.issue(request(1)), signer.issue(request(2)), signer.issue(request(3))]);
    expect(own.workers).toBe(2);
    await signer.close();
    await expect(signer.issue(request(4))).rejects.toThrow(/closed/);
    expect(own.workers).toBe(2); // a pool passed in belongs to the caller
    await own.close();
    expect(own.workers).toBe(0);
    await expect(own.signEnvelope(kp, 'pq', 'permit', new Uint8Array(1))).rejects.toThrow(/closed/);
  });

  it('close() on a batch signer signs the open batch before letting go', async () => {
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool, batch: { maxSize: 100, maxDelayMs: 60_000 } });
    const pending = Promise.all([signer.issue(request(1)), signer.issue(request(2))]);
    await signer.close();
    const tokens = (await pending).map((p) => p.token);
    for (const [i, t] of tokens.entries()) await tool().verify(t, { action: 'fs.read_file', args: { i: i + 1 } });
  });

  it('close() on the last user of the shared pool lets permits already being signed finish', async () => {
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid' });
    const shared = signer.pool as SigningPool;
    const pending = Promise.all([1, 2, 3].map((i) => signer.issue(request(i))));
    await signer.close();
    expect(shared.workers).toBe(0);
    const tokens = (await pending).map((p) => p.token);
    for (const [i, t] of tokens.entries()) await tool().verify(t, { action: 'fs.read_file', args: { i: i + 1 } });
  });

  it('the shared pool closes when its last signer does, and a new signer gets a fresh one', async () => {
    const a = PermitSigner.fromKeyPair(kp, { mode: 'hybrid' });
    const b = PermitSigner.fromKeyPair(kp, { mode: 'hybrid' });
    expect(a.pool).toBe(b.pool);
    await a.issue(request());
    await a.close();
    await tool().verify((await b.issue(request())).token, { action: 'fs.read_file', args: { i: 0 } });
    const shared = b.pool as SigningPool;
    await b.close();
    expect(shared.workers).toBe(0);
    const c = PermitSigner.fromKeyPair(kp, { mode: 'hybrid' });
    expect(c.pool).not.toBe(shared);
    await tool().verify((await c.issue(request())).token, { action: 'fs.read_file', args: { i: 0 } });
    await c.close();
  });

  it('does not keep a process alive: a script that signs and never closes its signer exits', () => {
    const script = fileURLToPath(new URL('./fixtures/sign-and-exit.ts', import.meta.url));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 45_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^3 parts, pool workers 1\n$/);
  });
});

describe('a PermitSigner whose batch options are refused', () => {
  // The constructor took a reference on the process-wide signing pool before validating the batch
  // options, and threw without giving it back: the pool (workers + this key) never closed again.
  it('does not keep a hold on the shared signing pool', async () => {
    expect(() => PermitSigner.fromKeyPair(kp, { mode: 'pq', batch: { maxSize: 0 } })).toThrow(TypeError);
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'pq' });
    const shared = signer.pool as SigningPool;
    await signer.close();
    // The last real user is gone, so the shared pool must be closed.
    await expect(shared.signEnvelope(kp, 'pq', 'permit', new Uint8Array(1))).rejects.toThrow(/closed/);
  });
});

describe('the default signing pool size', () => {
  // size defaulted to availableParallelism() and sizes above 256 are refused, so on a host with
  // more cores `new SigningPool()` — and every PermitSigner on the shared pool — threw.
  it('is capped at the largest allowed pool on a host with more cores than that', async () => {
    fault.cores = 384;
    const pool = new SigningPool();
    expect(pool.size).toBe(256);
    await pool.close();
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'pq' });
    expect(signer.pool?.size).toBe(256);
    await signer.close();
  });

  it('is one per core below the cap', async () => {
    fault.cores = 3;
    const pool = new SigningPool();
    expect(pool.size).toBe(3);
    await pool.close();
  });
});

describe('a signing pool with maxQueue 0', () => {
  // The queue check ran before a job could reach an idle worker, so with maxQueue 0 every job was
  // refused as "queue full (0 waiting)": a pool configured never to queue could never sign.
  it('signs what an idle worker can take at once and refuses only what would have to wait', async () => {
    const pool = new SigningPool({ size: 1, perWorker: 1, maxQueue: 0 });
    try {
      const results = await Promise.allSettled([0, 1].map((i) => pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([i]))));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      expect((results[1] as PromiseRejectedResult).reason.message).toMatch(/signing queue is full/);
      expect(await pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([2]))).toMatch(/^AQ/);
    } finally {
      await pool.close();
    }
  });
});

describe('a signing pool that cannot start a worker thread', () => {
  // #pump let new Worker's exception escape. From signBytes it left the job in the queue (signed
  // later for nobody); from the 'exit' handler of a crashed worker it was an uncaught exception:
  // the process died, and the permit waiting for that worker never settled.
  const settleWithin = <T>(p: Promise<T>, ms: number) =>
    Promise.race([
      p.then(
        () => 'fulfilled',
        () => 'rejected',
      ),
      new Promise((r) => setTimeout(() => r('pending'), ms)),
    ]);

  it('after a worker crash, refuses what waits (fail closed) instead of throwing from the exit handler', async () => {
    const pool = new SigningPool({ size: 1, perWorker: 1 });
    try {
      await pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([0])); // worker up and ready
      pool._crashNextJobForTest();
      const first = pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([1]));
      const second = pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([2])); // waits for the only worker
      fault.failWorker = true; // the replacement cannot start
      await expect(first).rejects.toThrow(/exited/);
      expect(await settleWithin(second, 5_000)).toBe('rejected');
      await expect(second).rejects.toThrow(/cannot start a signing worker/);
      fault.failWorker = false;
      expect(await pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([3]))).toMatch(/^AQ/);
    } finally {
      await pool.close();
    }
  });

  it('refuses the job without keeping it queued when no worker can start', async () => {
    const pool = new SigningPool({ size: 1, perWorker: 1, maxQueue: 1 });
    try {
      fault.failWorker = true;
      await expect(pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([1]))).rejects.toThrow(/Worker initialization failure/);
      fault.failWorker = false;
      // Nothing stale is left ahead of these: one goes to the worker, one may wait, none is refused.
      const results = await Promise.allSettled([2, 3].map((i) => pool.signEnvelope(kp, 'pq', 'permit', new Uint8Array([i]))));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    } finally {
      await pool.close();
    }
  });
});
