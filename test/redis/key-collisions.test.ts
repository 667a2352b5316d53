import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { decodeKeyPart, encodeKeyPart } from '../../src/redis/keys.ts';
import { RedisRateStore, RedisReplayStore, RedisSessionStore } from '../../src/redis/index.ts';
import { cleanup, keysUnder, REDIS_URL, skipRedis, uniquePrefix } from './redis-harness.ts';

const prefix = uniquePrefix('keys');
afterAll(() => cleanup(prefix));

describe('redis key encoding', () => {
  it('is injective over every JS string, lone surrogates included', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => decodeKeyPart(encodeKeyPart(s)) === s));
    expect(encodeKeyPart('\uD800')).not.toBe(encodeKeyPart('\uDFFF'));
  });

  it('uses no character Redis treats specially', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => /^[A-Za-z0-9_-]*$/.test(encodeKeyPart(s))));
  });
});

/** Pairs that a naive "principal:action" key would merge. */
const tricky: [string, string][] = [
  ['a:b', 'c'],
  ['a', 'b:c'],
  ['{tag}x', 'tool'],
  ['{tag}y', 'tool'],
  ['*', 'tool'],
  ['alice', 'tool'],
  ['bob smith', 'tool'],
  ['bob', 'smith tool'],
  ['straße', 'tool'],
  ['strasse', 'tool'],
  ['\u00e9', 'tool'],
  ['e\u0301', 'tool'],
  ['agent"]', 'x'],
  ['agent', '"]x'],
];

describe.skipIf(skipRedis)('names that try to collide in Redis', () => {
  it('get rate limits of their own', async () => {
    const keyPrefix = `${prefix}gate:`;
    const rate = new RedisRateStore(REDIS_URL, { keyPrefix });
    const session = new RedisSessionStore(REDIS_URL, { keyPrefix });
    const gate = Gate.fromDict(
      { policy: [{ name: 'one each', effect: 'permit', conditions: [{ rate_limit: { max: 1, window: '1h' } }] }] },
      { stores: { rate, session }, drift: false },
    );
    try {
      for (const [principalId, actionName] of tricky) {
        const ctx = { principalId, principalKind: 'agent' as const, actionName, sessionId: `${principalId}|${actionName}` };
        expect(await gate.evaluate(ctx), `${principalId} / ${actionName}`).toMatchObject({ kind: 'permit' });
        expect(await gate.evaluate(ctx), `${principalId} / ${actionName} again`).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED' });
      }
      const keys = await keysUnder(keyPrefix);
      const escaped = keyPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      for (const key of keys) expect(key).toMatch(new RegExp(`^${escaped}(?:(?:rz|rh|ss|sr):[A-Za-z0-9_-]+)$`));
    } finally {
      await gate.close();
      await rate.close();
      await session.close();
    }
  });

  it('do not share invalidations, sessions or permit ids', async () => {
    const keyPrefix = `${prefix}state:`;
    const sessions = new RedisSessionStore(REDIS_URL, { keyPrefix });
    const replay = new RedisReplayStore(REDIS_URL, { keyPrefix });
    const obs = (principalId: string, sessionId: string) =>
      sessions.observe({ principalId, sessionId, now: 1_000, behaviourWindowMs: 60_000 });
    try {
      await obs('x*', 'sess:1');
      await obs('x', 'sess');
      await obs('\uD800', '\uDFFF');
      await sessions.invalidate({ type: 'principal', principalId: 'x*' }, 'cut', 2_000);
      await sessions.invalidate({ type: 'session', sessionId: '\uD800' }, 'cut', 2_000);
      expect((await obs('x*', 'sess:1')).invalid).toBe(true);
      expect((await obs('x', 'sess')).invalid).toBe(false);
      expect((await obs('\uD800', '\uDFFF')).invalid).toBe(false);
      expect(await replay.claim('jti:{a}', 10_000, 1_000)).toBe(true);
      expect(await replay.claim('jti:{a}*', 10_000, 1_000)).toBe(true);
      expect(await replay.claim('jti:{a}', 10_000, 1_000)).toBe(false);
    } finally {
      await sessions.close();
      await replay.close();
    }
  });
});
