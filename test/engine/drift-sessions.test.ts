import { describe, expect, it } from 'vitest';
import {
  Gate,
  InMemoryBus,
  InMemorySessionStore,
  type GateEvent,
  type InvalidationMessage,
  type PermitIssuer,
} from '../../src/engine/index.ts';
import { haversineKm } from '../../src/engine/drift.ts';
import { code, ctx, manualClock, outcome } from './helpers.ts';

const OPEN = { policies: [{ name: 'all', effect: 'permit', conditions: [] }] };
const MUMBAI = { lat: 19.076, lon: 72.8777, country: 'IN' };
const PUNE = { lat: 18.5204, lon: 73.8567, country: 'IN' };
const DELHI = { lat: 28.6139, lon: 77.209, country: 'IN' };
const LONDON = { lat: 51.5074, lon: -0.1278, country: 'GB' };
const PARIS = { lat: 48.8566, lon: 2.3522, country: 'FR' };

describe('haversine distance', () => {
  it('matches known great-circle distances', () => {
    expect(haversineKm(LONDON, PARIS)).toBeGreaterThan(340);
    expect(haversineKm(LONDON, PARIS)).toBeLessThan(347);
    expect(haversineKm(MUMBAI, DELHI)).toBeGreaterThan(1140);
    expect(haversineKm(MUMBAI, DELHI)).toBeLessThan(1160);
    expect(haversineKm(MUMBAI, MUMBAI)).toBe(0);
    expect(haversineKm({ lat: 0, lon: 179.9 }, { lat: 0, lon: -179.9 })).toBeLessThan(25);
    expect(haversineKm({ lat: 90, lon: 0 }, { lat: -90, lon: 0 })).toBeCloseTo(Math.PI * 6371.0088, 0);
  });
});

describe('drift: IP and geo', () => {
  it('strict: an IP change invalidates the session, and every later call in it is SESSION_INVALID', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9' }));
    expect(v).toMatchObject({ kind: 'invalidate', scope: { type: 'session', sessionId: 's1' }, evaluator: 'drift' });
    expect(v.kind === 'invalidate' && v.reason).toMatch(/IP changed/);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('SESSION_INVALID');
    expect(await outcome(gate, ctx({ sessionId: 's2', ip: '198.51.100.9' }))).toBe('permit');
  });

  it('strict: dropping the IP mid-session is drift too (missing fails closed)', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('invalidate');
  });

  it('strict: a country change is drift even on the same IP', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: LONDON }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: PARIS }))).toBe('invalidate');
  });

  it('an origin passed in the context is used instead of session state', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', originIp: '203.0.113.5' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's2', ip: '203.0.113.5', originIp: '198.51.100.1' }))).toBe('invalidate');
  });

  it('tolerant: an IP change within geoDriftMaxKm is fine, beyond it invalidates', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { ipGeo: 'tolerant', geoDriftMaxKm: 500 } });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: MUMBAI }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.77', geo: PUNE }))).toBe('permit');
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9', geo: DELHI }));
    expect(v).toMatchObject({ kind: 'invalidate' });
    expect(v.kind === 'invalidate' && v.reason).toMatch(/km/);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: MUMBAI }))).toBe('SESSION_INVALID');
  });

  it('tolerant: the distance is measured from the origin, not the last call (no creeping)', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { ipGeo: 'tolerant', geoDriftMaxKm: 1000 } });
    const steps = [MUMBAI, { lat: 21.5, lon: 74.5 }, { lat: 24, lon: 76 }, { lat: 26.5, lon: 77 }, { lat: 29, lon: 77.5 }];
    const seen: string[] = [];
    for (const [i, geo] of steps.entries()) seen.push(await outcome(gate, ctx({ sessionId: 's1', ip: `203.0.113.${i + 1}`, geo })));
    expect(seen.slice(0, 3)).toEqual(['permit', 'permit', 'permit']);
    expect(seen).toContain('invalidate');
  });

  it('tolerant: missing geo fails closed, on the origin or on the call', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { ipGeo: 'tolerant' } });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: MUMBAI }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.6' }))).toBe('invalidate');
    expect(await outcome(gate, ctx({ sessionId: 's2', ip: '203.0.113.5' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's2', ip: '203.0.113.6', geo: MUMBAI }))).toBe('invalidate');
  });

  it('ipGeo off ignores IP and geo changes', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { ipGeo: 'off' } });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: LONDON }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '198.51.100.9', geo: MUMBAI }))).toBe('permit');
  });

  it('bad drift options are refused when the gate is built', () => {
    expect(() => Gate.fromDict(OPEN, { drift: { geoDriftMaxKm: Number.NaN } })).toThrow();
    expect(() => Gate.fromDict(OPEN, { drift: { geoDriftMaxKm: -1 } })).toThrow();
    expect(() => Gate.fromDict(OPEN, { drift: { ipGeo: 'loose' as never } })).toThrow();
    expect(() => Gate.fromDict(OPEN, { drift: { maxSessionAge: 'forever' } })).toThrow();
    expect(() => Gate.fromDict(OPEN, { drift: { warnActionsPerMinute: 0 } })).toThrow();
    expect(() => Gate.fromDict(OPEN, { drift: { maxActionsPerMinute: Number.POSITIVE_INFINITY } })).toThrow();
    expect(() => Gate.fromDict(OPEN, { drift: { warnActionsPerMinute: 500, maxActionsPerMinute: 400 } })).toThrow(
      /at least warnActionsPerMinute/,
    );
    expect(() => Gate.fromDict(OPEN, { drift: { warningThreshold: 0 } })).toThrow(/warningThreshold/);
    expect(() => Gate.fromDict(OPEN, { drift: { warningThreshold: 1.5 } })).toThrow(/warningThreshold/);
  });
});

describe('drift: device, session age and behaviour', () => {
  it('a device change invalidates (strict) and is ignored when off', async () => {
    const strict = Gate.fromDict(OPEN);
    expect(await outcome(strict, ctx({ sessionId: 's1', device: 'laptop-1' }))).toBe('permit');
    expect(await outcome(strict, ctx({ sessionId: 's1', device: 'phone-9' }))).toBe('invalidate');
    const off = Gate.fromDict(OPEN, { drift: { device: 'off' } });
    expect(await outcome(off, ctx({ sessionId: 's1', device: 'laptop-1' }))).toBe('permit');
    expect(await outcome(off, ctx({ sessionId: 's1', device: 'phone-9' }))).toBe('permit');
  });

  it('a session older than maxSessionAge is invalidated', async () => {
    const clock = manualClock();
    const gate = Gate.fromDict(OPEN, { clock: clock.now, drift: { maxSessionAge: '1h' } });
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    clock.advance(3_600_000);
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    clock.advance(1);
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('invalidate');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('SESSION_INVALID');
  });

  it('behaviour: past the warning rate calls are refused DRIFT_DETECTED and the session lives on', async () => {
    const clock = manualClock();
    const gate = Gate.fromDict(OPEN, { clock: clock.now, drift: { warnActionsPerMinute: 3, maxActionsPerMinute: 100 } });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push(await outcome(gate, ctx({ sessionId: 's1' })));
      clock.advance(1_000);
    }
    expect(seen).toEqual(['permit', 'permit', 'permit', 'DRIFT_DETECTED', 'DRIFT_DETECTED']);
    clock.advance(60_000);
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
  });

  it('behaviour: the highest allowed threshold still trips', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { warnActionsPerMinute: 998, maxActionsPerMinute: 999 } });
    const seen = new Set<string>();
    for (let i = 0; i < 1001; i++) seen.add(await outcome(gate, ctx({ sessionId: 's1' })));
    expect(seen).toEqual(new Set(['permit', 'DRIFT_DETECTED', 'invalidate', 'SESSION_INVALID']));
  });

  it('behaviour: past the maximum rate the session is invalidated', async () => {
    const clock = manualClock();
    const gate = Gate.fromDict(OPEN, { clock: clock.now, drift: { warnActionsPerMinute: 3, maxActionsPerMinute: 5 } });
    const seen: string[] = [];
    for (let i = 0; i < 7; i++) seen.push(await outcome(gate, ctx({ sessionId: 's1' })));
    expect(seen).toEqual(['permit', 'permit', 'permit', 'DRIFT_DETECTED', 'DRIFT_DETECTED', 'invalidate', 'SESSION_INVALID']);
  });

  it('drift is checked before policy: a drifting session is invalidated even for a call the policy refuses', async () => {
    const gate = Gate.fromDict({ policies: [] });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '198.51.100.9' }))).toBe('invalidate');
  });

  it('drift: false turns every detector off', async () => {
    const gate = Gate.fromDict(OPEN, { drift: false });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', device: 'a' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '198.51.100.9', device: 'b' }))).toBe('permit');
  });
});

describe('sessions belong to their principal', () => {
  it('another principal naming the session is refused SESSION_INVALID', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', principalId: 'mallory' }))).toBe('SESSION_INVALID');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
  });

  it('another principal hammering the session cannot push the owner into behaviour drift', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { warnActionsPerMinute: 5, maxActionsPerMinute: 10 } });
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    for (let i = 0; i < 30; i++) expect(await outcome(gate, ctx({ sessionId: 's1', principalId: 'mallory' }))).toBe('SESSION_INVALID');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
  });

  it("another principal cannot use up the owner's max_actions_per_session", async () => {
    const gate = Gate.fromDict(OPEN, { invariants: [{ name: 'cap', max_actions_per_session: 3 }] });
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    for (let i = 0; i < 5; i++) await gate.evaluate(ctx({ sessionId: 's1', principalId: 'mallory' }));
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('INVARIANT_VIOLATION');
  });
});

describe('invalidation across gates', () => {
  function pair() {
    const bus = new InMemoryBus();
    const clock = manualClock();
    const a = Gate.fromDict(OPEN, { bus, clock: clock.now });
    const b = Gate.fromDict(OPEN, { bus, clock: clock.now });
    return { bus, clock, a, b };
  }

  it('a drift violation at one gate is published and the other gate refuses the session', async () => {
    const { bus, a, b } = pair();
    const heard: InvalidationMessage[] = [];
    bus.subscribe((m) => heard.push(m));
    expect(await outcome(b, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    expect(await outcome(a, ctx({ sessionId: 's1', ip: '198.51.100.9' }))).toBe('permit'); // a's first sight
    expect(await outcome(a, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('invalidate');
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ scope: { type: 'session', sessionId: 's1' }, origin: a.id });
    expect(await outcome(b, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('SESSION_INVALID');
    expect(await outcome(b, ctx({ sessionId: 's2', ip: '203.0.113.5' }))).toBe('permit');
  });

  it("principal scope cuts off that principal's existing sessions everywhere, not others, not new ones", async () => {
    const { clock, a, b } = pair();
    expect(await outcome(a, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(b, ctx({ sessionId: 's2' }))).toBe('permit');
    expect(await outcome(b, ctx({ sessionId: 's3', principalId: 'agent-2' }))).toBe('permit');
    clock.advance(10);
    await a.invalidate({ type: 'principal', principalId: 'agent-1' }, 'credential leaked');
    const v = await b.evaluate(ctx({ sessionId: 's2' }));
    expect(v).toMatchObject({ kind: 'refuse', code: 'SESSION_INVALID' });
    expect(v.kind === 'refuse' && v.reason).toMatch(/credential leaked/);
    expect(await outcome(a, ctx({ sessionId: 's1' }))).toBe('SESSION_INVALID');
    expect(await outcome(b, ctx({ sessionId: 's3', principalId: 'agent-2' }))).toBe('permit');
    clock.advance(10);
    expect(await outcome(b, ctx({ sessionId: 's4' }))).toBe('permit');
  });

  it('global scope cuts off every existing session on every gate', async () => {
    const { clock, a, b } = pair();
    expect(await outcome(a, ctx({ sessionId: 's1' }))).toBe('permit');
    expect(await outcome(b, ctx({ sessionId: 's2', principalId: 'agent-2' }))).toBe('permit');
    clock.advance(10);
    await b.invalidate({ type: 'global' }, 'incident');
    expect(await outcome(a, ctx({ sessionId: 's1' }))).toBe('SESSION_INVALID');
    expect(await outcome(b, ctx({ sessionId: 's2', principalId: 'agent-2' }))).toBe('SESSION_INVALID');
  });

  it('session scope through the operator API reaches the other gate', async () => {
    const { a, b } = pair();
    expect(await outcome(b, ctx({ sessionId: 's1' }))).toBe('permit');
    await a.invalidate({ type: 'session', sessionId: 's1' });
    expect(await outcome(b, ctx({ sessionId: 's1' }))).toBe('SESSION_INVALID');
  });

  it('a late, older principal or global invalidation does not shorten a newer cutoff', () => {
    const store = new InMemorySessionStore();
    const observe = (sessionId: string, now: number) => store.observe({ principalId: 'p', sessionId, now, behaviourWindowMs: 60_000 });
    observe('early', 50);
    observe('middle', 150);
    store.invalidate({ type: 'principal', principalId: 'p' }, 'newer', 200);
    store.invalidate({ type: 'principal', principalId: 'p' }, 'older, delivered late', 100);
    expect(observe('middle', 250)).toMatchObject({ invalid: true, reason: 'newer' });
    expect(observe('early', 250)).toMatchObject({ invalid: true });
    expect(observe('fresh', 300)).toMatchObject({ invalid: false });
    store.invalidate({ type: 'global' }, 'incident', 400);
    store.invalidate({ type: 'global' }, 'old incident', 10);
    expect(observe('fresh', 450)).toMatchObject({ invalid: true, reason: 'incident' });
  });

  it('a closed gate stops listening to the bus', async () => {
    const { a, b } = pair();
    await b.close();
    await a.invalidate({ type: 'session', sessionId: 's1' });
    expect(await outcome(b, ctx({ sessionId: 's1' }))).toBe('STORE_UNAVAILABLE');
  });

  it('a bus that fails to publish still invalidates locally', async () => {
    const bus = {
      publish: () => {
        throw new Error('redis down');
      },
      subscribe: () => () => undefined,
    };
    const gate = Gate.fromDict(OPEN, { bus });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '198.51.100.9' }))).toBe('invalidate');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('SESSION_INVALID');
  });

  it("gates sharing one session store see each other's invalidations without a bus", async () => {
    const sessions = new InMemorySessionStore();
    const a = Gate.fromDict(OPEN, { stores: { session: sessions } });
    const b = Gate.fromDict(OPEN, { stores: { session: sessions } });
    expect(await outcome(a, ctx({ sessionId: 's1', device: 'd1' }))).toBe('permit');
    expect(await outcome(b, ctx({ sessionId: 's1', device: 'd2' }))).toBe('invalidate');
    expect(await outcome(a, ctx({ sessionId: 's1', device: 'd1' }))).toBe('SESSION_INVALID');
  });
});

describe('check()', () => {
  it('throws InvalidatedError for an invalidation and RefusedError for a refusal', async () => {
    const gate = Gate.fromDict(OPEN);
    await expect(gate.check(ctx({ sessionId: 's1', ip: '203.0.113.5' }))).resolves.toMatchObject({ kind: 'permit' });
    await expect(gate.check(ctx({ sessionId: 's1', ip: '198.51.100.9' }))).rejects.toMatchObject({
      name: 'InvalidatedError',
      code: 'SESSION_INVALID',
      verdict: { kind: 'invalidate' },
    });
    await expect(gate.check(ctx({ sessionId: 's1', ip: '203.0.113.5' }))).rejects.toMatchObject({
      name: 'RefusedError',
      code: 'SESSION_INVALID',
    });
  });

  it('permits in observe mode whatever the real verdict', async () => {
    const gate = Gate.fromDict({ policies: [] }, { observeOnly: true });
    await expect(gate.check(ctx())).resolves.toMatchObject({ kind: 'permit', observed: { code: 'NO_POLICY_MATCH' } });
  });
});

describe('observe mode', () => {
  it('permits with the real verdict in observed, unsigned, and records the real verdict', async () => {
    const events: GateEvent[] = [];
    const signer: PermitIssuer = { issue: async () => ({ token: 'signed', id: 'jti' }) };
    const gate = Gate.fromDict(
      { policies: [{ name: 'no_deletes', effect: 'refuse', conditions: [{ action: 'fs.delete' }] }] },
      {
        observeOnly: true,
        signer,
        audit: { append: async (e) => void events.push(e) },
      },
    );
    const v = await gate.evaluate(ctx({ actionName: 'fs.delete' }));
    expect(v.kind).toBe('permit');
    expect(v.kind === 'permit' && v.permit).toBeUndefined();
    expect(v.kind === 'permit' && v.observed).toMatchObject({ kind: 'refuse', code: 'POLICY_DENIED', policy: 'no_deletes' });
    const bad = await gate.evaluate({ ...ctx(), actionName: 7 } as never);
    expect(bad.kind === 'refuse' ? bad.code : bad.kind).toBe('INVALID_CONTEXT');
    expect(events[0]).toMatchObject({ type: 'verdict', verdict: 'refuse', code: 'POLICY_DENIED', observed: true });
  });

  it('a drift violation is reported in observed but nothing is invalidated or published', async () => {
    const bus = new InMemoryBus();
    const heard: InvalidationMessage[] = [];
    bus.subscribe((m) => heard.push(m));
    const gate = Gate.fromDict(OPEN, { observeOnly: true, bus });
    const other = Gate.fromDict(OPEN, { bus });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    expect(await outcome(other, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9' }));
    expect(v.kind).toBe('permit');
    expect(v.kind === 'permit' && v.observed).toMatchObject({ kind: 'invalidate', scope: { type: 'session', sessionId: 's1' } });
    expect(heard).toHaveLength(0);
    expect(await outcome(other, ctx({ sessionId: 's1', ip: '203.0.113.5' }))).toBe('permit');
    const again = await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.5' }));
    expect(again.kind === 'permit' && again.observed?.kind).toBe('permit');
  });

  it('observed permits carry the real permit verdict', async () => {
    const gate = Gate.fromDict(OPEN, { observeOnly: true });
    const v = await gate.evaluate(ctx());
    expect(v.kind === 'permit' && v.observed).toMatchObject({ kind: 'permit', policy: 'all' });
  });
});

describe('drift: an IP or device that appears mid-session is a change, as one that disappears is', () => {
  it('strict: a session begun without an IP is invalidated when a later call brings one', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(code(await gate.evaluate(ctx({ sessionId: 's1' })))).toBe('permit');
    expect(code(await gate.evaluate(ctx({ sessionId: 's1' })))).toBe('permit');
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9' }));
    expect(v).toMatchObject({ kind: 'invalidate', reason: expect.stringMatching(/^ip drift: IP changed from none to 198\.51\.100\.9/) });
    expect(code(await gate.evaluate(ctx({ sessionId: 's1' })))).toBe('SESSION_INVALID');
  });

  it('tolerant: an IP appearing needs a location to measure from, so it invalidates without one', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { ipGeo: 'tolerant' } });
    expect(code(await gate.evaluate(ctx({ sessionId: 's1' })))).toBe('permit');
    expect(code(await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9', geo: { lat: 51.5, lon: -0.1 } })))).toBe('invalidate');
  });

  it('strict device: a device appearing mid-session invalidates; device off ignores it', async () => {
    const strict = Gate.fromDict(OPEN);
    expect(code(await strict.evaluate(ctx({ sessionId: 's1' })))).toBe('permit');
    expect(code(await strict.evaluate(ctx({ sessionId: 's1', device: 'laptop-2' })))).toBe('invalidate');
    const off = Gate.fromDict(OPEN, { drift: { device: 'off' } });
    expect(code(await off.evaluate(ctx({ sessionId: 's1' })))).toBe('permit');
    expect(code(await off.evaluate(ctx({ sessionId: 's1', device: 'laptop-2' })))).toBe('permit');
  });

  it('the first call of a session sets its origins, and an origin in the context still rules', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(code(await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.7', device: 'd1' })))).toBe('permit');
    expect(code(await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.7', device: 'd1' })))).toBe('permit');
    expect(code(await gate.evaluate(ctx({ sessionId: 's2' })))).toBe('permit');
    expect(code(await gate.evaluate(ctx({ sessionId: 's2', ip: '203.0.113.7', originIp: '203.0.113.7' })))).toBe('permit');
  });
});
