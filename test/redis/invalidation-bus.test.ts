import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyPair, PublicKeyDirectory } from '../../src/crypto/index.ts';
import type { InvalidationMessage } from '../../src/engine/invalidation.ts';
import { keyPairSigner, keysVerifier, RedisInvalidationBus, type BusSigner } from '../../src/redis/index.ts';
import { cleanup, freePort, PrivateRedis, REDIS_URL, skipRedis, uniquePrefix, waitUntil } from './redis-harness.ts';

const prefix = uniquePrefix('bus');
afterAll(() => cleanup(prefix));
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

const gateKey = KeyPair.generate();
const outsiderKey = KeyPair.generate();
const trusted = PublicKeyDirectory.inMemory([gateKey.publicKeys()]);

function bus(url: string, keyPrefix: string, opts: { signer?: BusSigner; clock?: () => number } = {}) {
  const dropped: string[] = [];
  const warnings: string[] = [];
  const received: InvalidationMessage[] = [];
  const b = new RedisInvalidationBus(url, {
    keyPrefix,
    signer: opts.signer ?? keyPairSigner(gateKey),
    verifier: keysVerifier(trusted),
    onDropped: (reason) => dropped.push(reason),
    onWarning: (message) => warnings.push(message),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  b.subscribe((m) => received.push(m));
  closers.push(() => b.close());
  return { bus: b, dropped, warnings, received };
}

const message = (sessionId: string, at = Date.now()): InvalidationMessage => ({
  scope: { type: 'session', sessionId },
  reason: 'drift',
  at,
  origin: 'gate-a',
});

describe.skipIf(skipRedis)('RedisInvalidationBus', () => {
  it('delivers a signed invalidation to every subscriber', async () => {
    const keyPrefix = `${prefix}deliver:`;
    const a = bus(REDIS_URL, keyPrefix);
    const b = bus(REDIS_URL, keyPrefix);
    await Promise.all([a.bus.whenSubscribed(), b.bus.whenSubscribed()]);
    const sent = message('s-1');
    await a.bus.publish(sent);
    await waitUntil(() => a.received.length === 1 && b.received.length === 1, 5_000, 'not delivered');
    expect(b.received[0]).toEqual(sent);
    expect(b.dropped).toEqual([]);
  });

  it('drops unsigned, forged, re-signed, malformed, stale and foreign-channel messages', async () => {
    const keyPrefix = `${prefix}drop:`;
    const listener = bus(REDIS_URL, keyPrefix);
    await listener.bus.whenSubscribed();
    const channel = `${keyPrefix}inv`;
    const raw = new Redis(REDIS_URL);
    closers.push(() => raw.disconnect());

    // A genuine message to tamper with.
    const genuinePayload = JSON.stringify({
      v: 1,
      ch: channel,
      id: 'x',
      scope: { type: 'global' },
      reason: 'r',
      at: Date.now(),
      origin: 'o',
    });
    const genuineSig = await keyPairSigner(gateKey).sign(Buffer.from(genuinePayload));
    const forgedPayload = genuinePayload.replace('"global"}', '"principal","principalId":"ceo"}');
    const outsiderSig = await keyPairSigner(outsiderKey).sign(Buffer.from(genuinePayload));
    const otherChannelPayload = genuinePayload.replace(channel, 'other-deployment:inv');
    const otherChannelSig = await keyPairSigner(gateKey).sign(Buffer.from(otherChannelPayload));
    const stalePayload = JSON.stringify({
      v: 1,
      ch: channel,
      id: 'y',
      scope: { type: 'global' },
      reason: 'r',
      at: Date.now() - 60_000,
      origin: 'o',
    });
    const staleSig = await keyPairSigner(gateKey).sign(Buffer.from(stalePayload));
    const attempts = [
      JSON.stringify({ scope: { type: 'global' }, reason: 'unsigned', at: Date.now(), origin: 'x' }),
      JSON.stringify({ p: forgedPayload, sig: genuineSig }),
      JSON.stringify({ p: genuinePayload, sig: outsiderSig }),
      JSON.stringify({ p: otherChannelPayload, sig: otherChannelSig }),
      JSON.stringify({ p: stalePayload, sig: staleSig }),
      'not json at all',
    ];
    for (const text of attempts) await raw.publish(channel, text);
    await waitUntil(() => listener.dropped.length === attempts.length, 10_000, `dropped only ${listener.dropped.length}`);
    expect(listener.received).toEqual([]);
    const reasons = listener.dropped.map((r) => r.replace(/:.*$/, '').replace(/ \(.*$/, ''));
    expect(reasons.sort()).toEqual([
      'not a signed message',
      'not a signed message',
      'signature rejected',
      'signature rejected',
      'signed for another channel',
      'stale',
    ]);

    // The genuine one still gets through.
    await raw.publish(channel, JSON.stringify({ p: genuinePayload, sig: genuineSig }));
    await waitUntil(() => listener.received.length === 1, 5_000, 'genuine message not delivered');
    expect(listener.received[0]).toMatchObject({ scope: { type: 'global' } });
  });

  it('applies a signed message once: a replayed copy is dropped', async () => {
    const keyPrefix = `${prefix}replay:`;
    const listener = bus(REDIS_URL, keyPrefix);
    await listener.bus.whenSubscribed();
    const channel = `${keyPrefix}inv`;
    const raw = new Redis(REDIS_URL);
    closers.push(() => raw.disconnect());
    const payload = JSON.stringify({
      v: 1,
      ch: channel,
      id: 'once',
      scope: { type: 'session', sessionId: 's-9' },
      reason: 'r',
      at: Date.now(),
      origin: 'o',
    });
    const wire = JSON.stringify({ p: payload, sig: await keyPairSigner(gateKey).sign(Buffer.from(payload)) });
    for (let i = 0; i < 3; i++) await raw.publish(channel, wire);
    await waitUntil(() => listener.received.length + listener.dropped.length === 3, 10_000, 'not all copies handled');
    expect(listener.received).toHaveLength(1);
    expect(listener.dropped.map((r) => r.replace(/ \(.*$/, ''))).toEqual(['replayed', 'replayed']);
  });

  it('tells onWarning about a dropped message and a subscriber that throws', async () => {
    const keyPrefix = `${prefix}warn:`;
    const listener = bus(REDIS_URL, keyPrefix);
    listener.bus.subscribe(() => {
      throw new Error('bad subscriber');
    });
    await listener.bus.whenSubscribed();
    const raw = new Redis(REDIS_URL);
    closers.push(() => raw.disconnect());
    await raw.publish(`${keyPrefix}inv`, 'not json at all');
    await waitUntil(() => listener.dropped.length === 1, 10_000, 'forged message not handled');
    await listener.bus.publish(message('s-warn'));
    await waitUntil(() => listener.received.length === 1, 5_000, 'genuine message not delivered');
    expect(listener.warnings).toEqual([
      'dropped an invalidation message from redis: not a signed message',
      'invalidation subscriber failed: Error: bad subscriber',
    ]);
  });

  it('refuses to be built without a signer and a verifier', () => {
    expect(() => new RedisInvalidationBus(REDIS_URL, {} as never)).toThrow(/signer and a verifier/);
  });

  it('resubscribes by itself after Redis restarts', async () => {
    const server = new PrivateRedis(await freePort());
    await server.start();
    closers.push(() => server.kill());
    const a = bus(server.url, 'kavach:');
    const b = bus(server.url, 'kavach:');
    await Promise.all([a.bus.whenSubscribed(), b.bus.whenSubscribed()]);
    await server.kill();
    await expect(a.bus.publish(message('while-down'))).rejects.toThrow();
    await server.start();
    // Publish until the resubscribed listener hears one (reconnection order is not ours to choose).
    let n = 0;
    await waitUntil(
      async () => {
        try {
          await a.bus.publish(message(`after-${n++}`));
        } catch {
          // publisher not reconnected yet
        }
        return b.received.length > 0;
      },
      15_000,
      'no delivery after restart',
      50,
    );
    expect(b.received[0]?.scope).toMatchObject({ type: 'session' });
  });
});

describe('RedisInvalidationBus options', () => {
  it('refuses a maxAgeMs or maxSkewMs that would switch the staleness and replay checks off', () => {
    const kp = KeyPair.generate();
    const base = { keyPrefix: `${prefix}busopts:`, signer: keyPairSigner(kp), verifier: keysVerifier(kp.publicKeys()) };
    for (const bad of [{ maxAgeMs: Number.NaN }, { maxAgeMs: -1 }, { maxAgeMs: Infinity }, { maxSkewMs: Number.NaN }, { maxSkewMs: -5 }]) {
      let made: RedisInvalidationBus | undefined;
      try {
        expect(() => (made = new RedisInvalidationBus(REDIS_URL, { ...base, ...bad })), JSON.stringify(bad)).toThrow(TypeError);
      } finally {
        if (made) closers.push(() => made?.close());
      }
    }
  });
});
