import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import type { PermitRequest } from '../../src/engine/ports.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { SigningPool } from '../../src/crypto/signing-pool.ts';
import { verifyEnvelope } from '../../src/crypto/signatures.ts';
import { T0 } from './helpers.ts';

const POLICY = { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read*' }] }] };
const CTX = { principalId: 'alice', principalKind: 'agent', actionName: 'fs.read_file', params: { path: '/a' }, audience: 'fs' } as const;

let kp: KeyPair;
let pool: SigningPool; // one worker: a crash takes down the only signer there is
const now = T0;

function request(i = 0): PermitRequest {
  return { principalId: 'alice', principalKind: 'agent', action: 'fs.read_file', args: { i }, evaluationId: `e-${i}`, audience: 'fs', issuedAt: now, expiresAt: now + 30_000 };
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

describe('the signing pool', () => {
  it('signs envelopes off-thread that verify like on-thread ones, in any domain', async () => {
    const message = new TextEncoder().encode('checkpoint 42');
    const envelope = await pool.signEnvelope(kp, 'hybrid', 'audit-checkpoint', message);
    await expect(verifyEnvelope(kp.publicKeys(), 'hybrid', 'audit-checkpoint', message, envelope, { now })).resolves.toEqual({ kid: kp.kid });
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
      await Promise.all(Array.from({ length: 24 }, (_, i) => signer.issue(request(i)).then(() => { events.push('signed'); })));
      ticking = false;
      await new Promise((resolve) => setImmediate(resolve));
      return events;
    };
    const ticksDuring = (events: string[]) => events.slice(events.indexOf('signed'), events.lastIndexOf('signed')).filter((e) => e === 'tick').length;
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
