import { describe, expect, it } from 'vitest';
import {
  InMemoryBus,
  InMemoryRateStore,
  InMemoryReplayStore,
  InMemorySessionStore,
  type InvalidationMessage,
} from '../../src/engine/index.ts';

describe('InMemoryReplayStore', () => {
  it('claims an id once until it expires', () => {
    const store = new InMemoryReplayStore();
    expect(store.claim('jti-1', 1_000, 0)).toBe(true);
    expect(store.claim('jti-1', 1_000, 500)).toBe(false);
    expect(store.claim('jti-1', 1_000, 999)).toBe(false);
    expect(store.claim('jti-2', 1_000, 500)).toBe(true);
    expect(store.claim('jti-1', 2_000, 1_000)).toBe(true);
  });
});

describe('InMemoryBus', () => {
  it('delivers a copy to every subscriber, survives a throwing one (telling onWarning), and stops after unsubscribe', () => {
    const warnings: string[] = [];
    const bus = new InMemoryBus({ onWarning: (m) => void warnings.push(m) });
    const got: InvalidationMessage[] = [];
    bus.subscribe(() => {
      throw new Error('bad subscriber');
    });
    const off = bus.subscribe((m) => {
      got.push(m);
      m.reason = 'tampered';
    });
    const message: InvalidationMessage = { scope: { type: 'global' }, reason: 'incident', at: 1, origin: 'g1' };
    bus.publish(message);
    expect(got).toHaveLength(1);
    expect(message.reason).toBe('incident');
    expect(warnings).toEqual(['invalidation subscriber failed: Error: bad subscriber']);
    off();
    bus.publish(message);
    expect(got).toHaveLength(1);
  });
});

describe('InMemorySessionStore', () => {
  const obs = (sessionId: string, now: number, extra: Record<string, unknown> = {}) => ({
    principalId: 'p',
    sessionId,
    now,
    behaviourWindowMs: 60_000,
    ...extra,
  });

  it('records origins on the first call and counts calls', () => {
    const store = new InMemorySessionStore();
    store.observe(obs('s', 0, { ip: '10.0.0.1', device: 'd1', geo: { lat: 1, lon: 2 } }));
    const r = store.observe(obs('s', 10, { ip: '10.0.0.2', device: 'd2' }));
    expect(r).toMatchObject({
      invalid: false,
      session: {
        principalId: 'p',
        startedAt: 0,
        originIp: '10.0.0.1',
        originDevice: 'd1',
        originGeo: { lat: 1, lon: 2 },
        actionCount: 2,
        recentCalls: 2,
      },
    });
  });

  it('counts only calls inside the behaviour window, and at most 1000 of them', () => {
    const store = new InMemorySessionStore();
    for (let i = 0; i < 5; i++) store.observe(obs('s', i * 30_000));
    expect(store.observe(obs('s', 150_000))).toMatchObject({ session: { recentCalls: 2, actionCount: 6 } });
    let last: unknown;
    for (let i = 0; i < 1_500; i++) last = store.observe(obs('t', 1_000_000 + i));
    expect(last).toMatchObject({ session: { recentCalls: 1_000, actionCount: 1_500 } });
  });

  it('forgets a session idle past its ttl and starts it afresh', () => {
    const store = new InMemorySessionStore({ idleTtlMs: 1_000 });
    store.observe(obs('s', 0, { ip: '10.0.0.1' }));
    expect(store.observe(obs('s', 5_000, { ip: '10.0.0.9' }))).toMatchObject({
      session: { startedAt: 5_000, originIp: '10.0.0.9', actionCount: 1 },
    });
  });

  it('hands out snapshots the caller cannot use to change the store', () => {
    const store = new InMemorySessionStore();
    const r = store.observe(obs('s', 0));
    if (!r.invalid) r.session.actionCount = 1_000;
    expect(store.observe(obs('s', 1))).toMatchObject({ session: { actionCount: 2 } });
  });
});

describe('InMemoryRateStore', () => {
  const c = (amount: number, max = 3, key = 'k') => [{ key, amount, max, windowMs: 1_000 }];

  it('charges all limits of a call or none', () => {
    const store = new InMemoryRateStore();
    const both = [...c(1, 5, 'a'), ...c(1, 1, 'b')];
    expect(store.checkAndCharge(both, 'x', 0)).toEqual({ admitted: true });
    expect(store.checkAndCharge(both, 'y', 0)).toMatchObject({ admitted: false, index: 1 });
    // 'a' was not charged for the refused call: four more fit.
    for (const id of ['1', '2', '3', '4']) expect(store.checkAndCharge(c(1, 5, 'a'), id, 0).admitted).toBe(true);
    expect(store.checkAndCharge(c(1, 5, 'a'), '5', 0).admitted).toBe(false);
  });

  it('says repeated for an id already charged under every key, and refunds only what a call charged', () => {
    const store = new InMemoryRateStore();
    expect(store.checkAndCharge(c(1), 'x', 0)).toEqual({ admitted: true });
    expect(store.checkAndCharge(c(1), 'x', 0)).toEqual({ admitted: true, repeated: true });
    store.refund(c(1), 'nobody');
    expect(store.checkAndCharge(c(2), 'y', 0)).toEqual({ admitted: true });
    expect(store.checkAndCharge(c(1), 'z', 0)).toMatchObject({ admitted: false });
    store.refund(c(2), 'y');
    expect(store.checkAndCharge(c(2), 'z', 0)).toEqual({ admitted: true });
  });

  it('retryAfterMs is when enough of the window has slid out; none when the charge can never fit', () => {
    const store = new InMemoryRateStore();
    store.checkAndCharge(c(1), 'a', 0);
    store.checkAndCharge(c(1), 'b', 400);
    store.checkAndCharge(c(1), 'c', 700);
    expect(store.checkAndCharge(c(2), 'd', 800)).toEqual({ admitted: false, index: 0, retryAfterMs: 600 });
    expect(store.checkAndCharge(c(4), 'e', 800)).toEqual({ admitted: false, index: 0, retryAfterMs: undefined });
    expect(store.checkAndCharge(c(1), 'f', 1_000).admitted).toBe(true);
  });
});
