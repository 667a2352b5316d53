import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { InMemoryRateStore, type RateCharge } from '../../src/engine/stores.ts';
import { RedisRateStore } from '../../src/redis/index.ts';
import { cleanup, prng, REDIS_URL, skipRedis, uniquePrefix } from './redis-harness.ts';

const prefix = uniquePrefix('rate');
afterAll(() => cleanup(prefix));

describe.skipIf(skipRedis)('RedisRateStore', () => {
  it('answers every check-and-charge and refund exactly as the in-memory store does', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}conf:` });
    try {
      for (const seed of [1, 2, 3, 4]) {
        const rnd = prng(seed);
        const memory = new InMemoryRateStore();
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
        const limits: RateCharge[] = [
          // Different windows: a retried id can have expired under one key but not another.
          { key: `s${seed}-a`, amount: 1, max: 3, windowMs: 1_000 },
          { key: `s${seed}-b`, amount: 1, max: 5, windowMs: 2_500 },
          { key: `s${seed}-budget`, amount: 0, max: 10, windowMs: 1_500 },
        ];
        const admitted: { charges: RateCharge[]; id: string }[] = [];
        let now = 1_000_000;
        for (let step = 0; step < 150; step++) {
          now += Math.floor(rnd() * 120);
          const op = rnd();
          if (op < 0.12 && admitted.length > 0) {
            const { charges, id } = pick(admitted);
            memory.refund(charges, id);
            await store.refund(charges, id);
            continue;
          }
          let charges: RateCharge[];
          let id: string;
          if (op < 0.25 && admitted.length > 0) {
            ({ charges, id } = pick(admitted)); // the same call evaluated again
          } else {
            const chosen = limits.filter(() => rnd() < 0.6);
            if (chosen.length === 0) chosen.push(pick(limits));
            // max varies as a policy reload would change it: windows can be over their max.
            charges = chosen.map((l) =>
              l.key.endsWith('budget')
                ? { ...l, amount: pick([0, 0.1, 0.2, 0.5, 1, 2, 3, 4.5, 11]), max: pick([6, 10]) }
                : { ...l, max: l.max - (rnd() < 0.2 ? 2 : 0) },
            );
            id = rnd() < 0.05 ? '' : randomUUID();
          }
          const expected = memory.checkAndCharge(charges, id, now);
          const actual = await store.checkAndCharge(charges, id, now);
          expect(actual, `seed ${seed} step ${step}`).toEqual(expected);
          if (expected.admitted && id !== '') admitted.push({ charges, id });
        }
      }
    } finally {
      await store.close();
    }
  });

  it('charges several limits all or nothing', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}atomic:` });
    try {
      const wide = { key: 'wide', amount: 1, max: 10, windowMs: 60_000 };
      const narrow = { key: 'narrow', amount: 1, max: 1, windowMs: 60_000 };
      expect(await store.checkAndCharge([wide, narrow], 'c1', 1_000)).toEqual({ admitted: true });
      expect(await store.checkAndCharge([wide, narrow], 'c2', 1_001)).toEqual({ admitted: false, index: 1, retryAfterMs: 59_999 });
      // The refused call charged nothing under `wide`: nine more fit there.
      for (let i = 0; i < 9; i++) expect((await store.checkAndCharge([wide], `w${i}`, 1_002)).admitted).toBe(true);
      expect((await store.checkAndCharge([wide], 'w-last', 1_003)).admitted).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('admits a repeated chargeId once and takes a refund back', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}dedupe:` });
    try {
      const budget = { key: 'refunds', amount: 600, max: 1_000, windowMs: 86_400_000 };
      expect((await store.checkAndCharge([budget], 'call-1', 1)).admitted).toBe(true);
      expect(await store.checkAndCharge([budget], 'call-1', 2)).toEqual({ admitted: true, repeated: true });
      expect(await store.checkAndCharge([budget], 'call-2', 3)).toEqual({ admitted: false, index: 0, retryAfterMs: 86_399_998 });
      await store.refund([budget], 'call-1');
      expect((await store.checkAndCharge([budget], 'call-2', 4)).admitted).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('charges a retried id again when a shorter window has expired, and refunds only that second charge', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}retry:` });
    const memory = new InMemoryRateStore();
    const short = { key: 'short', amount: 1, max: 2, windowMs: 1_000 };
    const long = { key: 'long', amount: 1, max: 2, windowMs: 5_000 };
    const both = async (f: (s: InMemoryRateStore | RedisRateStore) => unknown) => {
      const expected = await f(memory);
      expect(await f(store)).toEqual(expected);
      return expected;
    };
    try {
      expect(await both((s) => s.checkAndCharge([short, long], 'c', 0))).toEqual({ admitted: true });
      expect(await both((s) => s.checkAndCharge([short, long], 'c', 1_500))).toEqual({ admitted: true });
      await both((s) => s.refund([short, long], 'c'));
      expect(await both((s) => s.checkAndCharge([long], 'd', 1_600))).toEqual({ admitted: true });
      expect(await both((s) => s.checkAndCharge([long], 'e', 1_700))).toEqual({ admitted: false, index: 0, retryAfterMs: 3_300 });
    } finally {
      await store.close();
    }
  });

  it('refunds the newest charge of an id even when two were charged in the same millisecond', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}samems:` });
    const memory = new InMemoryRateStore();
    const budget = { key: 'spend', max: 1, windowMs: 10_000 };
    const other = { key: 'calls', amount: 1, max: 10, windowMs: 10_000 };
    const both = async (f: (s: InMemoryRateStore | RedisRateStore) => unknown) => {
      const expected = await f(memory);
      expect(await f(store)).toEqual(expected);
      return expected;
    };
    try {
      // The same id under 'spend' twice at t=5 (its second charge names another key, so it is no repeat).
      await both((s) => s.checkAndCharge([{ ...budget, amount: 0.5 }], 'x', 5));
      await both((s) => s.checkAndCharge([{ ...budget, amount: 0.1 }, other], 'x', 5));
      // Takes back the 0.1 (the newest), leaving 0.5 spent: 0.5 more fits, 0.6 does not.
      await both((s) => s.refund([{ ...budget, amount: 0.1 }, other], 'x'));
      expect(await both((s) => s.checkAndCharge([{ ...budget, amount: 0.6 }], 'y', 6))).toMatchObject({ admitted: false });
      expect(await both((s) => s.checkAndCharge([{ ...budget, amount: 0.5 }], 'z', 6))).toEqual({ admitted: true });
    } finally {
      await store.close();
    }
  });

  it('fits decimal budgets exactly as memory does (0.1 + 0.2 under 0.3)', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}decimal:` });
    const memory = new InMemoryRateStore();
    try {
      const steps: [number, string, number][] = [
        [0.1, 'a', 1],
        [0.2, 'b', 2],
        [0.1, 'c', 3],
        [0.3, 'd', 2_000],
        [0.7, 'e', 2_001],
        [0.05, 'f', 2_002],
      ];
      for (const [amount, id, now] of steps) {
        const charge = [{ key: 'eur', amount, max: 0.3, windowMs: 1_000 }];
        expect(await store.checkAndCharge(charge, id, now), id).toEqual(memory.checkAndCharge(charge, id, now));
      }
    } finally {
      await store.close();
    }
  });

  it('finds the retry time of a window far over a lowered max as memory does', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}lowered:` });
    const memory = new InMemoryRateStore();
    try {
      for (let t = 0; t < 40; t++) {
        const charge = [{ key: 'calls', amount: 1, max: 40, windowMs: 10_000 }];
        expect(await store.checkAndCharge(charge, `c${t}`, t)).toEqual(memory.checkAndCharge(charge, `c${t}`, t));
      }
      for (const max of [39, 12, 3, 1]) {
        const charge = [{ key: 'calls', amount: 1, max, windowMs: 10_000 }];
        const expected = memory.checkAndCharge(charge, `m${max}`, 100);
        expect(expected).toMatchObject({ admitted: false });
        expect(await store.checkAndCharge(charge, `m${max}`, 100)).toEqual(expected);
      }
    } finally {
      await store.close();
    }
  });

  it('gives no retry time for an amount that can never fit', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}never:` });
    try {
      expect(await store.checkAndCharge([{ key: 'b', amount: 11, max: 10, windowMs: 1_000 }], 'x', 5)).toEqual({
        admitted: false,
        index: 0,
      });
    } finally {
      await store.close();
    }
  });

  it('reloads its script when Redis has forgotten it (NOSCRIPT)', async () => {
    const admin = new Redis(REDIS_URL);
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}noscript:` });
    try {
      const limit = { key: 'k', amount: 1, max: 2, windowMs: 60_000 };
      expect((await store.checkAndCharge([limit], 'a', 10)).admitted).toBe(true);
      await admin.script('FLUSH');
      expect((await store.checkAndCharge([limit], 'b', 11)).admitted).toBe(true);
      expect((await store.checkAndCharge([limit], 'c', 12)).admitted).toBe(false);
    } finally {
      await store.close();
      admin.disconnect();
    }
  });

  it('admits exactly max of many concurrent calls from two store instances', async () => {
    const a = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}race:` });
    const b = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}race:` });
    try {
      const limit = { key: 'shared', amount: 1, max: 13, windowMs: 60_000 };
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).checkAndCharge([limit], `call-${i}`, 1_000 + (i % 7))),
      );
      expect(results.filter((r) => r.admitted)).toHaveLength(13);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses a charge with a non-finite amount instead of sending it', async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}nan:` });
    try {
      await expect(store.checkAndCharge([{ key: 'b', amount: Number.NaN, max: 10, windowMs: 1_000 }], 'x', 5)).rejects.toThrow(/finite/);
    } finally {
      await store.close();
    }
  });

  it("with clock: 'redis', replicas whose clocks disagree by an hour still share one window", async () => {
    const limit = { key: 'skewed', amount: 1, max: 2, windowMs: 60_000 };
    const ahead = Date.now() + 3_600_000;
    const behind = Date.now() - 3_600_000;
    // The gate's clock (the default): the replica an hour ahead no longer sees the other's charge.
    const gateA = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}skew-gate:` });
    const gateB = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}skew-gate:` });
    // Redis' clock: both place their charges at Redis' time, whatever `now` they pass.
    const redisA = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}skew-redis:`, clock: 'redis' });
    const redisB = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}skew-redis:`, clock: 'redis' });
    try {
      expect((await gateB.checkAndCharge([limit], 'b1', behind)).admitted).toBe(true);
      expect((await gateB.checkAndCharge([limit], 'b2', behind)).admitted).toBe(true);
      expect((await gateA.checkAndCharge([limit], 'a1', ahead)).admitted).toBe(true); // under-counted

      expect((await redisB.checkAndCharge([limit], 'b1', behind)).admitted).toBe(true);
      expect((await redisB.checkAndCharge([limit], 'b2', behind)).admitted).toBe(true);
      const refused = await redisA.checkAndCharge([limit], 'a1', ahead);
      expect(refused).toMatchObject({ admitted: false, index: 0 });
      // Retry-after is measured on Redis' clock too: about a minute, not an hour off.
      expect(refused.admitted === false && refused.retryAfterMs).toBeGreaterThan(55_000);
      expect(refused.admitted === false && refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    } finally {
      await Promise.all([gateA.close(), gateB.close(), redisA.close(), redisB.close()]);
    }
  });

  it("with clock: 'redis', entries leave the window by Redis' time", async () => {
    const store = new RedisRateStore(REDIS_URL, { keyPrefix: `${prefix}redis-time:`, clock: 'redis' });
    try {
      const limit = { key: 'short', amount: 1, max: 1, windowMs: 300 };
      expect((await store.checkAndCharge([limit], 'x', 0)).admitted).toBe(true);
      expect((await store.checkAndCharge([limit], 'y', 0)).admitted).toBe(false);
      await new Promise((r) => setTimeout(r, 350));
      expect((await store.checkAndCharge([limit], 'z', 0)).admitted).toBe(true);
      expect(() => new RedisRateStore(REDIS_URL, { clock: 'local' as never })).toThrow(/clock/);
    } finally {
      await store.close();
    }
  });
});
