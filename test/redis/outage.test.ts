import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import type { Verdict } from '../../src/engine/verdict.ts';
import { RedisRateStore, RedisReplayStore, RedisSessionStore } from '../../src/redis/index.ts';
import { freePort, PrivateRedis, skipRedis, waitUntil } from './redis-harness.ts';

const policy = {
  policy: [{ name: 'tools', effect: 'permit', conditions: [{ action: 'fs.*' }, { rate_limit: { max: 1_000, window: '1m' } }] }],
};
const call = (i: number, sessionId?: string) => ({
  principalId: 'alice',
  principalKind: 'agent' as const,
  actionName: 'fs.read',
  params: { i },
  ...(sessionId ? { sessionId } : {}),
});

/** The outage tests need redis-server on PATH (as CI has); they start and kill their own. */
describe.skipIf(skipRedis)('a Redis outage', () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
  });
  afterAll(() => server.kill());

  it('refuses every evaluation STORE_UNAVAILABLE while Redis is gone, then recovers without a new gate', async () => {
    const rate = new RedisRateStore(server.url);
    const session = new RedisSessionStore(server.url);
    const replay = new RedisReplayStore(server.url);
    const gate = Gate.fromDict(policy, { stores: { rate, session, replay }, drift: false });
    try {
      expect((await gate.evaluate(call(0, 's1'))).kind).toBe('permit');
      expect((await gate.evaluate(call(1))).kind).toBe('permit');

      await server.kill();
      const during: Verdict[] = [];
      for (let i = 0; i < 20; i++) during.push(await gate.evaluate(call(i, i % 2 ? 's1' : undefined)));
      expect(during.filter((v) => v.kind === 'permit')).toHaveLength(0);
      for (const v of during) expect(v).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE' });
      await expect(replay.claim('jti', Date.now() + 1_000, Date.now())).rejects.toThrow();

      await server.start();
      await waitUntil(async () => (await gate.evaluate(call(100, 's2'))).kind === 'permit', 15_000, 'the gate never recovered');
      expect((await gate.evaluate(call(101))).kind).toBe('permit');
      // Each store has its own connection: the replay store's may come back a moment later.
      let n = 0;
      await waitUntil(
        async () => replay.claim(`jti-after-${n++}`, Date.now() + 1_000, Date.now()).catch(() => false),
        15_000,
        'the replay store never recovered',
      );
    } finally {
      await gate.close();
      await Promise.all([rate.close(), session.close(), replay.close()]);
    }
  });

  it('tells onWarning why the connection failed', async () => {
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    let told: (message: string) => void = () => undefined;
    const warned = new Promise<string>((resolve) => (told = resolve));
    const rate = new RedisRateStore(nobody, { onWarning: (m) => told(m) });
    try {
      expect(await warned).toMatch(new RegExp(`^redis ${nobody}: .*ECONNREFUSED`));
    } finally {
      await rate.close();
    }
  });

  it('fails fast on a borrowed client that would queue commands while disconnected', async () => {
    // Default ioredis options: offline queue on, 20 retries per request. The store must not wait on them.
    const client = new Redis(server.url, { retryStrategy: () => 50 });
    client.on('error', () => {});
    const rate = new RedisRateStore(client, { commandTimeoutMs: 100 });
    const gate = Gate.fromDict(policy, { stores: { rate }, drift: false });
    try {
      await waitUntil(() => client.status === 'ready', 5_000, 'client did not connect');
      expect((await gate.evaluate(call(0))).kind).toBe('permit');
      await server.kill();
      const verdicts = await Promise.all(Array.from({ length: 10 }, (_, i) => gate.evaluate(call(i))));
      for (const v of verdicts) expect(v).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE' });
      await server.start();
      await waitUntil(async () => (await gate.evaluate(call(50))).kind === 'permit', 15_000, 'the gate never recovered');
    } finally {
      await gate.close();
      await rate.close();
      client.disconnect();
    }
  });

  it('does not mistake a reply read late, after the event loop stalled, for a timeout', async () => {
    const rate = new RedisRateStore(server.url, { commandTimeoutMs: 50 });
    try {
      const limit = [{ key: 'k', amount: 1, max: 1_000, windowMs: 60_000 }];
      await rate.checkAndCharge(limit, 'warm', 1);
      const pending = rate.checkAndCharge(limit, 'stalled', 2);
      const until = Date.now() + 300;
      while (Date.now() < until) {
        // a synchronous stall (as signing a permit is) well past the 50 ms deadline
      }
      await expect(pending).resolves.toEqual({ admitted: true });
    } finally {
      await rate.close();
    }
  });

  it('refuses STORE_UNAVAILABLE when a command outlives the timeout', async () => {
    const admin = new Redis(server.url);
    const rate = new RedisRateStore(server.url, { commandTimeoutMs: 50 });
    const gate = Gate.fromDict(policy, { stores: { rate }, drift: false });
    try {
      expect((await gate.evaluate(call(0))).kind).toBe('permit');
      // Freeze the server for a while: connected, but answering nothing.
      const paused = admin.call('CLIENT', 'PAUSE', '400', 'ALL');
      await paused;
      const verdict = await gate.evaluate(call(1));
      expect(verdict).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE' });
      if (verdict.kind === 'refuse') expect(verdict.reason).toMatch(/did not answer within 50 ms/);
      await waitUntil(async () => (await gate.evaluate(call(2))).kind === 'permit', 5_000, 'the gate never recovered');
    } finally {
      await gate.close();
      await rate.close();
      admin.disconnect();
    }
  });
});
