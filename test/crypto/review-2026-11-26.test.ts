// Defects found in the 2026-11-26 review of src/crypto; each test failed before its fix.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PermitError } from '../../src/crypto/errors.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { encodeProof, rootMessage } from '../../src/crypto/batch-proof.ts';
import { buildTree } from '../../src/crypto/merkle.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { joinBatchToken } from '../../src/crypto/permit-token.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { SecureChannel } from '../../src/crypto/secure-channel.ts';
import { SigningPool } from '../../src/crypto/signing-pool.ts';
import { signEnvelope } from '../../src/crypto/signatures.ts';
import { T0, b64, forge } from './helpers.ts';
import { utf8 } from '../../src/crypto/encoding.ts';

// Lets one test make fsync fail after the temporary key file was written; off for everything else.
const fault = vi.hoisted(() => ({ failSync: false, cores: undefined as number | undefined, failWorker: false, reads: [] as Uint8Array[] }));
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
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...orig,
    // Remembers what readFile handed out, so a test can check it was wiped.
    readFile: async (...args: Parameters<typeof orig.readFile>) => {
      const out = await orig.readFile(...args);
      if (out instanceof Uint8Array) fault.reads.push(out);
      return out;
    },
    open: async (...args: Parameters<typeof orig.open>) => {
      const handle = await orig.open(...args);
      if (fault.failSync) handle.sync = async () => { throw new Error('EIO: simulated fsync failure'); };
      return handle;
    },
  };
});

let kp: KeyPair;
let dir: string;
const now = T0;

beforeAll(async () => {
  kp = KeyPair.generate({ now: T0 });
  dir = await mkdtemp(join(tmpdir(), 'kavach-review-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  fault.failSync = false;
  fault.cores = undefined;
  fault.failWorker = false;
  vi.restoreAllMocks();
});

/** Claims JSON exactly as the signer lays it out (canonical key order), with `sub` spelled by hand. */
function claimsJson(subJson: string): string {
  return `{"act":"fs.read","args":"${'A'.repeat(43)}","eid":"e-1","exp":${now + 30_000},"iat":${now},` +
    `"iss":"kavach","jti":"${'j'.repeat(22)}","kid":"${kp.kid}","knd":"agent","sub":${subJson},"v":1}`;
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('claims with an escaped lone surrogate', () => {
  // JSON.parse turns "\udc00" into a lone surrogate; canonicalJson refuses to encode one and threw a
  // TypeError straight out of verify(): no stable code (the MCP guard reported VERIFY_FAILED, the
  // CLI exited 2), and reachable by anyone, before any signature check.
  const verifier = () => new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', clock: () => now });

  it('are BAD_FORMAT in a single-signed token, even when validly signed', async () => {
    const token = await forge(kp, 'hybrid', utf8(claimsJson('"\\udc00"')));
    const err = await caught(verifier().verify(token));
    expect(err).toBeInstanceOf(PermitError);
    expect((err as PermitError).code).toBe('BAD_FORMAT');
  });

  it('are BAD_FORMAT in a batch token, even when validly signed', async () => {
    const leaf = utf8(claimsJson('"x\\ud800"'));
    const { root, paths } = buildTree([leaf]);
    const envelope = await signEnvelope(kp, 'hybrid', 'permit-batch', rootMessage(1, root));
    const token = joinBatchToken(leaf, b64(encodeProof(1, 0, paths[0] as Uint8Array[])), envelope);
    const err = await caught(verifier().verify(token));
    expect(err).toBeInstanceOf(PermitError);
    expect((err as PermitError).code).toBe('BAD_FORMAT');
  });

  it('control: the same route with a well-formed sub verifies', async () => {
    const token = await forge(kp, 'hybrid', utf8(claimsJson('"alice"')));
    expect((await verifier().verify(token)).sub).toBe('alice');
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
    Promise.race([p.then(() => 'fulfilled', () => 'rejected'), new Promise((r) => setTimeout(() => r('pending'), ms))]);

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

describe('secret key material', () => {
  it('save() wipes the secret bytes it wrote (plain and encrypted)', async () => {
    const spy = vi.spyOn(KeyPair.prototype, 'toSecretBytes');
    await kp.save(join(dir, 'plain.key'));
    await kp.save(join(dir, 'sealed.key'), { passphrase: 'pw', scryptLogN: 14 });
    expect(spy).toHaveBeenCalledTimes(2);
    for (const r of spy.mock.results) expect((r.value as Uint8Array).every((b) => b === 0)).toBe(true);
  });

  it('load() wipes the secret bytes it read, and the loaded key still signs as before', async () => {
    await kp.save(join(dir, 'plain2.key'));
    await kp.save(join(dir, 'sealed2.key'), { passphrase: 'pw', scryptLogN: 14 });
    const spy = vi.spyOn(KeyPair, 'fromSecretBytes');
    fault.reads.length = 0;
    const a = await KeyPair.load(join(dir, 'plain2.key'));
    // The buffer readFile returned for the plain file held the secret too: no copy may survive.
    expect(fault.reads).toHaveLength(1);
    expect((fault.reads[0] as Uint8Array).every((x) => x === 0)).toBe(true);
    const b = await KeyPair.load(join(dir, 'sealed2.key'), { passphrase: 'pw' });
    expect(a.kid).toBe(kp.kid);
    expect(b.kid).toBe(kp.kid);
    expect(a.publicKeys()).toEqual(kp.publicKeys());
    expect(spy).toHaveBeenCalledTimes(2);
    for (const [bytes] of spy.mock.calls) expect((bytes as Uint8Array).every((x) => x === 0)).toBe(true);
  });

  it('a plain key file refused for being loaded with a passphrase is wiped from memory too', async () => {
    await kp.save(join(dir, 'plain3.key'));
    fault.reads.length = 0;
    await expect(KeyPair.load(join(dir, 'plain3.key'), { passphrase: 'pw' })).rejects.toMatchObject({ code: 'KEY_FILE_NOT_ENCRYPTED' });
    expect(fault.reads).toHaveLength(1);
    expect((fault.reads[0] as Uint8Array).every((x) => x === 0)).toBe(true);
  });

  it('a failed write leaves no temporary copy of the secret beside the key file', async () => {
    const sub = await mkdtemp(join(dir, 'fail-'));
    fault.failSync = true;
    await expect(kp.save(join(sub, 'secret.key'))).rejects.toThrow(/EIO/);
    fault.failSync = false;
    expect(await readdir(sub)).toEqual([]);
  });
});

describe('secure channel context ids with a lone surrogate', () => {
  // contextBytes UTF-8-encoded the id as it was, and TextEncoder maps a lone surrogate to U+FFFD:
  // a message sealed for context "tenant-\uFFFD" opened under "tenant-\uD800" (another id).
  it('are refused when sealing and when opening, so two ids never share one context', () => {
    const peer = KeyPair.generate({ now: T0 });
    const a = new SecureChannel(kp, peer.publicKeys(), { clock: () => now });
    const b = new SecureChannel(peer, kp.publicKeys(), { clock: () => now });
    const sealed = a.seal(new Uint8Array([1, 2, 3]), { contextId: 'tenant-\uFFFD' });
    expect(() => b.open(sealed, { expectedContextId: 'tenant-\uD800' })).toThrow(TypeError);
    expect(() => a.seal(new Uint8Array([1]), { contextId: 'tenant-\uD800' })).toThrow(TypeError);
    expect(b.open(sealed, { expectedContextId: 'tenant-\uFFFD' })).toEqual(new Uint8Array([1, 2, 3]));
  });
});
