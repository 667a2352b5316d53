import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyPair, PermitSigner, PermitVerifier, PublicKeyDirectory } from '../../src/crypto/index.ts';
import { Gate, type GateOptions } from '../../src/engine/gate.ts';
import { InMemorySessionStore } from '../../src/engine/stores.ts';
import type { Verdict } from '../../src/engine/verdict.ts';
import {
  failFastRedisOptions,
  keyPairSigner,
  keysVerifier,
  RedisInvalidationBus,
  RedisRateStore,
  RedisReplayStore,
  RedisSessionStore,
} from '../../src/redis/index.ts';
import { cleanup, REDIS_URL, skipRedis, uniquePrefix, waitUntil } from './redis-harness.ts';

const prefix = uniquePrefix('replicas');
afterAll(() => cleanup(prefix));

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

const policy = (max: number, per = 'principal+action') => ({
  policy: [
    { name: 'agent_refunds', effect: 'permit', conditions: [{ action: 'payments.refund' }, { rate_limit: { max, window: '1h', per } }] },
  ],
});

/** One replica: its own Redis connections (as a separate process would have) over the shared prefix. */
function replica(keyPrefix: string, extra: GateOptions = {}, max = 7): Gate {
  const rate = new RedisRateStore(REDIS_URL, { keyPrefix });
  const session = new RedisSessionStore(REDIS_URL, { keyPrefix });
  const replay = new RedisReplayStore(REDIS_URL, { keyPrefix });
  const gate = Gate.fromDict(policy(max), { drift: false, ...extra, stores: { rate, session, replay, ...extra.stores } });
  closers.push(
    () => gate.close(),
    () => rate.close(),
    () => session.close(),
    () => replay.close(),
  );
  return gate;
}

const call = (i: number, extra: object = {}) => ({
  principalId: 'agent-7',
  principalKind: 'agent' as const,
  actionName: 'payments.refund',
  params: { amount: i },
  ...extra,
});

const kinds = (verdicts: Verdict[]) => verdicts.map((v) => (v.kind === 'refuse' ? v.code : v.kind));

describe.skipIf(skipRedis)('two gate replicas over one Redis', () => {
  it('admit exactly max of many concurrent calls spread across both', async () => {
    const keyPrefix = `${prefix}limit:`;
    const a = replica(keyPrefix, {}, 7);
    const b = replica(keyPrefix, {}, 7);
    const verdicts = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).evaluate(call(i))));
    const codes = kinds(verdicts);
    expect(codes.filter((c) => c === 'permit')).toHaveLength(7);
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(33);
    const limited = verdicts.find((v) => v.kind === 'refuse');
    expect(limited).toMatchObject({ policy: 'agent_refunds', retryAfterMs: expect.any(Number) });
  });

  it('charge a callId evaluated at both replicas once', async () => {
    const keyPrefix = `${prefix}callid:`;
    const a = replica(keyPrefix, {}, 1);
    const b = replica(keyPrefix, {}, 1);
    expect((await a.evaluate(call(1, { callId: 'c-1' }))).kind).toBe('permit');
    expect((await b.evaluate(call(1, { callId: 'c-1' }))).kind).toBe('permit');
    expect(await b.evaluate(call(1, { callId: 'c-2' }))).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED' });
  });

  it('refuse at the other replica a session invalidated at one (shared session store)', async () => {
    const keyPrefix = `${prefix}inv-store:`;
    const a = replica(keyPrefix);
    const b = replica(keyPrefix, {}, 1_000);
    expect((await b.evaluate(call(1, { sessionId: 'sess-1' }))).kind).toBe('permit');
    await a.invalidate({ type: 'session', sessionId: 'sess-1' }, 'stolen laptop');
    let last: Verdict | undefined;
    await waitUntil(
      async () => {
        last = await b.evaluate(call(2, { sessionId: 'sess-1' }));
        return last.kind === 'refuse';
      },
      5_000,
      'replica b kept permitting an invalidated session',
    );
    expect(last).toMatchObject({ kind: 'refuse', code: 'SESSION_INVALID', reason: 'stolen laptop' });
  });

  it('refuse at the other replica a session invalidated at one (in-memory sessions, signed bus)', async () => {
    const keyPrefix = `${prefix}inv-bus:`;
    const kpA = KeyPair.generate();
    const kpB = KeyPair.generate();
    const keys = PublicKeyDirectory.inMemory([kpA.publicKeys(), kpB.publicKeys()]);
    const bus = (kp: KeyPair) => {
      const b = new RedisInvalidationBus(REDIS_URL, { keyPrefix, signer: keyPairSigner(kp), verifier: keysVerifier(keys) });
      closers.push(() => b.close());
      return b;
    };
    const busA = bus(kpA);
    const busB = bus(kpB);
    await Promise.all([busA.whenSubscribed(), busB.whenSubscribed()]);
    const a = replica(keyPrefix, { bus: busA, stores: { session: new InMemorySessionStore() } }, 1_000);
    const b = replica(keyPrefix, { bus: busB, stores: { session: new InMemorySessionStore() } }, 1_000);
    expect((await b.evaluate(call(1, { sessionId: 'sess-2' }))).kind).toBe('permit');
    await a.invalidate({ type: 'session', sessionId: 'sess-2' }, 'operator');
    await waitUntil(async () => (await b.evaluate(call(2, { sessionId: 'sess-2' }))).kind === 'refuse', 5_000, 'the bus never delivered');
    expect(await b.evaluate(call(3, { sessionId: 'sess-2' }))).toMatchObject({
      kind: 'refuse',
      code: 'SESSION_INVALID',
      reason: 'operator',
    });
    expect((await b.evaluate(call(4, { sessionId: 'sess-3' }))).kind).toBe('permit');
  });

  it('accept a signed permit once across verifiers sharing a RedisReplayStore', async () => {
    const keyPrefix = `${prefix}replay:`;
    const kp = KeyPair.generate();
    const a = replica(keyPrefix, { signer: PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }) });
    const verifierAt = () => {
      const replay = new RedisReplayStore(REDIS_URL, { keyPrefix });
      closers.push(() => replay.close());
      return new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'payments', replay });
    };
    const verdict = await a.evaluate(call(5, { audience: 'payments' }));
    if (verdict.kind !== 'permit' || verdict.permit === undefined)
      throw new Error(`expected a signed permit, got ${JSON.stringify(verdict)}`);
    const token = verdict.permit;
    const [first, second] = [verifierAt(), verifierAt()];
    await expect(first.verify(token, { action: 'payments.refund', args: { amount: 5 } })).resolves.toMatchObject({ jti: verdict.permitId });
    await expect(second.verify(token, { action: 'payments.refund', args: { amount: 5 } })).rejects.toMatchObject({ code: 'REPLAYED' });
  });

  it('share one borrowed client between every store, and leave it open when they close', async () => {
    const client = new Redis(REDIS_URL, failFastRedisOptions(100));
    closers.push(() => client.disconnect());
    const keyPrefix = `${prefix}borrowed:`;
    const rate = new RedisRateStore(client, { keyPrefix });
    const session = new RedisSessionStore(client, { keyPrefix });
    const replay = new RedisReplayStore(client, { keyPrefix });
    const gate = Gate.fromDict(policy(1), { stores: { rate, session, replay }, drift: false });
    expect((await gate.evaluate(call(1, { sessionId: 'b-1' }))).kind).toBe('permit');
    expect(await gate.evaluate(call(2, { sessionId: 'b-1' }))).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED' });
    await gate.close();
    await Promise.all([rate.close(), session.close(), replay.close()]);
    await expect(rate.checkAndCharge([{ key: 'k', amount: 1, max: 1, windowMs: 1 }], 'x', 1)).rejects.toThrow(/closed/);
    expect(await client.ping()).toBe('PONG');
  });

  it('let exactly one of many concurrent claims of one permit id win', async () => {
    const stores = [0, 1].map(() => new RedisReplayStore(REDIS_URL, { keyPrefix: `${prefix}claims:` }));
    closers.push(...stores.map((s) => () => s.close()));
    const now = Date.now();
    const wins = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (stores[i % 2] as RedisReplayStore).claim('jti-1', now + 30_000, now)),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
  });
});
