import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyPair, PermitSigner, PermitVerifier } from '../../src/crypto/index.ts';
import { Gate } from '../../src/engine/gate.ts';
import { RedisReplayStore } from '../../src/redis/index.ts';
import { cleanup, REDIS_URL, skipRedis, uniquePrefix } from './redis-harness.ts';

const prefix = uniquePrefix('replay');
afterAll(() => cleanup(prefix));

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

function replayStore(keyPrefix: string): RedisReplayStore {
  const store = new RedisReplayStore(REDIS_URL, { keyPrefix });
  closers.push(() => store.close());
  return store;
}

describe.skipIf(skipRedis)('RedisReplayStore keeps a claimed id claimed for its whole grace period', () => {
  it("refuses a second claim after the first claim's expiry while the id is still remembered", async () => {
    const store = replayStore(`${prefix}grace:`);
    const now = Date.now();
    expect(await store.claim('jti-g', now + 1_000, now)).toBe(true);
    // Another verifier, past the first one's idea of the expiry but inside the grace period.
    expect(await store.claim('jti-g', now + 11_000, now + 5_000)).toBe(false);
  });

  it('accepts a permit once across verifiers with different skews sharing the store', async () => {
    const keyPrefix = `${prefix}skews:`;
    const kp = KeyPair.generate();
    const gate = Gate.fromDict(
      { policy: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read' }] }] },
      { drift: false, signer: PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }) },
    );
    closers.push(() => gate.close());
    const verdict = await gate.evaluate({
      principalId: 'agent-1',
      principalKind: 'agent',
      actionName: 'fs.read',
      params: { path: '/a' },
      audience: 'fs',
    });
    if (verdict.kind !== 'permit' || verdict.permit === undefined)
      throw new Error(`expected a signed permit, got ${JSON.stringify(verdict)}`);
    const expect_ = { action: 'fs.read', args: { path: '/a' } };
    // A strict verifier (no skew) uses it first.
    const strict = new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'fs', replay: replayStore(keyPrefix), skewMs: 0 });
    const claims = await strict.verify(verdict.permit, expect_);
    // A lenient one (10 s of skew) sees it 5 s after its expiry: still valid by its rules, but used.
    const lenient = new PermitVerifier({
      keys: kp.publicKeys(),
      mode: 'hybrid',
      audience: 'fs',
      replay: replayStore(keyPrefix),
      skewMs: 10_000,
      clock: () => claims.exp + 5_000,
    });
    await expect(lenient.verify(verdict.permit, expect_)).rejects.toMatchObject({ code: 'REPLAYED' });
  });
});
