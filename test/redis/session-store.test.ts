import { afterAll, describe, expect, it } from 'vitest';
import { InMemorySessionStore, type SessionObservation } from '../../src/engine/stores.ts';
import type { InvalidationScope } from '../../src/engine/verdict.ts';
import { RedisSessionStore } from '../../src/redis/index.ts';
import { cleanup, prng, REDIS_URL, skipRedis, uniquePrefix } from './redis-harness.ts';

const prefix = uniquePrefix('session');
afterAll(() => cleanup(prefix));

describe.skipIf(skipRedis)('RedisSessionStore', () => {
  it('observes and invalidates exactly as the in-memory store does', async () => {
    const idleTtlMs = 3_000;
    // 300 sequential commands compare behaviour, not latency: a 100 ms stall on a loaded machine is not a finding here.
    const store = new RedisSessionStore(REDIS_URL, { keyPrefix: `${prefix}conf:`, idleTtlMs, commandTimeoutMs: 5_000 });
    const memory = new InMemorySessionStore({ idleTtlMs });
    const rnd = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    let now = 5_000_000;
    try {
      for (let step = 0; step < 300; step++) {
        now += pick([0, 1, 10, 100, 400, 900, 3_500]);
        if (rnd() < 0.06) {
          const scope: InvalidationScope = pick<InvalidationScope>([
            { type: 'session', sessionId: pick(['s1', 's2', 's3']) },
            { type: 'principal', principalId: pick(['alice', 'bob']) },
            { type: 'global' },
          ]);
          memory.invalidate(scope, `reason ${step}`, now);
          await store.invalidate(scope, `reason ${step}`, now);
          continue;
        }
        const obs: SessionObservation = {
          principalId: rnd() < 0.9 ? pick(['alice', 'bob']) : 'mallory',
          sessionId: pick(['s1', 's2', 's3', `fresh-${step}`]),
          now,
          behaviourWindowMs: 1_000,
        };
        if (rnd() < 0.7) obs.ip = pick(['10.0.0.1', '', '2001:db8::1']);
        if (rnd() < 0.5) obs.device = pick(['laptop', 'phone']);
        if (rnd() < 0.4)
          obs.geo = pick([
            { lat: 52.5, lon: 13.4, country: 'DE' },
            { lat: -33.9, lon: 151.2 },
          ]);
        expect(await store.observe(obs), `step ${step}`).toEqual(memory.observe(obs));
      }
    } finally {
      await store.close();
    }
  });

  it('keeps the principal a session was started by and its first origins, and does not count calls by others', async () => {
    const store = new RedisSessionStore(REDIS_URL, { keyPrefix: `${prefix}bind:` });
    try {
      await store.observe({ principalId: 'alice', sessionId: 'S', ip: '10.1.1.1', device: 'd1', now: 100, behaviourWindowMs: 60_000 });
      const second = await store.observe({ principalId: 'mallory', sessionId: 'S', ip: '6.6.6.6', now: 200, behaviourWindowMs: 60_000 });
      expect(second).toEqual({
        invalid: false,
        session: { principalId: 'alice', startedAt: 100, originIp: '10.1.1.1', originDevice: 'd1', actionCount: 1, recentCalls: 1 },
      });
      const third = await store.observe({ principalId: 'alice', sessionId: 'S', ip: '10.1.1.1', now: 300, behaviourWindowMs: 60_000 });
      expect(third).toMatchObject({ invalid: false, session: { principalId: 'alice', actionCount: 2, recentCalls: 2 } });
    } finally {
      await store.close();
    }
  });

  it('never lets a late, older principal cutoff replace a newer one', async () => {
    const store = new RedisSessionStore(REDIS_URL, { keyPrefix: `${prefix}cutoff:` });
    try {
      await store.observe({ principalId: 'alice', sessionId: 'mid', now: 150, behaviourWindowMs: 60_000 });
      await store.invalidate({ type: 'principal', principalId: 'alice' }, 'second', 200);
      await store.invalidate({ type: 'principal', principalId: 'alice' }, 'first (delivered late)', 100);
      expect(await store.observe({ principalId: 'alice', sessionId: 'mid', now: 300, behaviourWindowMs: 60_000 })).toEqual({
        invalid: true,
        reason: 'second',
      });
      expect((await store.observe({ principalId: 'alice', sessionId: 'after', now: 300, behaviourWindowMs: 60_000 })).invalid).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('cuts off sessions started at or before a principal or global cutoff, not after', async () => {
    const store = new RedisSessionStore(REDIS_URL, { keyPrefix: `${prefix}edge:` });
    const at = (sessionId: string, now: number, principalId = 'alice') =>
      store.observe({ principalId, sessionId, now, behaviourWindowMs: 60_000 });
    try {
      await at('same-ms', 500);
      await at('later', 501);
      await store.invalidate({ type: 'principal', principalId: 'alice' }, 'alice cut', 500);
      expect(await at('same-ms', 600)).toEqual({ invalid: true, reason: 'alice cut' });
      expect((await at('later', 600)).invalid).toBe(false);
      await at('bob-1', 700, 'bob');
      await store.invalidate({ type: 'global' }, 'everyone', 700);
      expect(await at('bob-1', 800, 'bob')).toEqual({ invalid: true, reason: 'everyone' });
      expect(await at('later', 800)).toEqual({ invalid: true, reason: 'everyone' });
      expect((await at('bob-2', 701, 'bob')).invalid).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('caps the remembered call times of a busy session', async () => {
    const store = new RedisSessionStore(REDIS_URL, { keyPrefix: `${prefix}cap:` });
    try {
      let last: unknown;
      for (let i = 0; i < 1_005; i++)
        last = await store.observe({ principalId: 'p', sessionId: 'busy', now: 1_000 + i, behaviourWindowMs: 60_000 });
      expect(last).toMatchObject({ invalid: false, session: { actionCount: 1_005, recentCalls: 1_000 } });
    } finally {
      await store.close();
    }
  });

  it('keeps as many call times as the observation asks (recentLimit, for behaviour thresholds above 1,000)', async () => {
    const store = new RedisSessionStore(REDIS_URL, { keyPrefix: `${prefix}limit:` });
    try {
      let last: unknown;
      for (let i = 0; i < 1_300; i++)
        last = await store.observe({ principalId: 'p', sessionId: 'busy', now: 1_000 + i, behaviourWindowMs: 60_000, recentLimit: 1_201 });
      expect(last).toMatchObject({ invalid: false, session: { actionCount: 1_300, recentCalls: 1_201 } });
      await expect(
        store.observe({ principalId: 'p', sessionId: 'busy', now: 3_000, behaviourWindowMs: 60_000, recentLimit: 0 }),
      ).rejects.toThrow(/recentLimit/);
    } finally {
      await store.close();
    }
  });
});
