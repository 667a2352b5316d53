import { describe, expect, it } from 'vitest';
import { Gate, InMemorySessionStore, type GeoLocation } from '../../src/engine/index.ts';
import { DRIFT_DEFAULTS, distanceKm, resolveDrift } from '../../src/engine/drift.ts';
import { ctx, manualClock, outcome } from './helpers.ts';

const OPEN = { policies: [{ name: 'all', effect: 'permit', conditions: [] }] };
// The seed's example: Chennai and Bangalore, ~290 km apart.
const CHENNAI: GeoLocation = { country: 'IN', city: 'Chennai', lat: 13.08, lon: 80.27 };
const BANGALORE: GeoLocation = { country: 'IN', city: 'Bangalore', lat: 12.97, lon: 77.59 };
const DELHI: GeoLocation = { country: 'IN', lat: 28.6139, lon: 77.209 };
const IN: GeoLocation = { country: 'IN' };
const LK: GeoLocation = { country: 'LK' };

describe('country-only locations (Kavach\'s GeoLocation("IN"))', () => {
  it('are valid context, alone or with a region and city; coordinates come in pairs', async () => {
    const gate = Gate.fromDict(OPEN, { drift: false });
    for (const geo of [IN, { country: 'in', region: 'TN', city: 'Chennai' }, { lat: 1, lon: 2 }, CHENNAI]) {
      expect(await outcome(gate, ctx({ geo, originGeo: geo }))).toBe('permit');
    }
    for (const geo of [
      {},
      { city: 'Chennai' },
      { country: 'IN', lat: 13 },
      { country: 'IN', lon: 80 },
      { country: 'IND' },
      { country: 'IN', region: '' },
    ]) {
      expect(await outcome(gate, ctx({ geo: geo as GeoLocation }))).toBe('INVALID_CONTEXT');
    }
  });

  it('without a km threshold, country comparisons work: same country permits, another country invalidates', async () => {
    const gate = Gate.fromDict(OPEN);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: IN }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '203.0.113.5', geo: { country: 'IN', city: 'Pune' } }))).toBe('permit');
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.5', geo: LK }));
    expect(v).toMatchObject({ kind: 'invalidate' });
    expect(v.kind === 'invalidate' && v.reason).toMatch(/country changed from IN to LK/);
  });

  it('with a km threshold, a location without coordinates fails closed (the distance cannot be checked)', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { geoDriftMaxKm: 500 } });
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.5', geo: IN }));
    expect(v).toMatchObject({ kind: 'invalidate' });
    expect(v.kind === 'invalidate' && v.reason).toMatch(/no coordinates/);
    // Origin with coordinates, the call with a country only: the same.
    expect(await outcome(gate, ctx({ sessionId: 's2', ip: '203.0.113.5', geo: CHENNAI }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's2', ip: '203.0.113.6', geo: IN }))).toBe('invalidate');
  });

  it('distanceKm needs coordinates on both sides', () => {
    expect(distanceKm(IN, CHENNAI)).toBeUndefined();
    expect(distanceKm(CHENNAI, BANGALORE)).toBeGreaterThan(280);
    expect(distanceKm(CHENNAI, BANGALORE)).toBeLessThan(300);
  });
});

describe('tolerant mode', () => {
  it('geoDriftMaxKm alone switches it on: a hop within range permits, beyond it invalidates', async () => {
    expect(resolveDrift({ geoDriftMaxKm: 500 })?.ipGeo).toBe('tolerant');
    expect(resolveDrift({})?.ipGeo).toBe('strict');
    const gate = Gate.fromDict(OPEN, { drift: { geoDriftMaxKm: 500 } });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.5', geo: BANGALORE }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.6', geo: CHENNAI }))).toBe('permit');
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.7', geo: DELHI }))).toBe('invalidate');
  });

  it('a radius that strict or off mode would ignore is refused', () => {
    expect(() => Gate.fromDict(OPEN, { drift: { ipGeo: 'strict', geoDriftMaxKm: 500 } })).toThrow(/tolerant mode only/);
    expect(() => Gate.fromDict(OPEN, { drift: { ipGeo: 'off', geoDriftMaxKm: 500 } })).toThrow(/tolerant mode only/);
    expect(() => Gate.fromDict(OPEN, { drift: { ipGeo: 'tolerant', geoDriftMaxKm: 50 } })).not.toThrow();
  });

  it('a hop within range is a warning: warningThreshold 1 refuses it DRIFT_DETECTED and the session lives on', async () => {
    const gate = Gate.fromDict(OPEN, { drift: { geoDriftMaxKm: 500, warningThreshold: 1 } });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.5', geo: BANGALORE }))).toBe('permit');
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '2.3.4.6', geo: CHENNAI }));
    expect(v).toMatchObject({ kind: 'refuse', code: 'DRIFT_DETECTED', evaluator: 'drift' });
    expect(v.kind === 'refuse' && v.reason).toMatch(/geo drift: .*IP changed from 2\.3\.4\.5 to 2\.3\.4\.6, \d+ km/);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.5', geo: BANGALORE }))).toBe('permit');
  });
});

describe('drift warnings add up on a call, as in Kavach (threshold 3 by default)', () => {
  const HOUR = 3_600_000;

  it('a session past 75% of its maximum age warns; alone that permits, at warningThreshold 1 it refuses', async () => {
    for (const [warningThreshold, expected] of [
      [3, 'permit'],
      [1, 'DRIFT_DETECTED'],
    ] as const) {
      const clock = manualClock();
      const gate = Gate.fromDict(OPEN, { clock: clock.now, drift: { maxSessionAge: '4h', warningThreshold } });
      expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
      clock.advance(3 * HOUR);
      expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
      clock.advance(1);
      const v = await gate.evaluate(ctx({ sessionId: 's1' }));
      expect(v.kind === 'refuse' ? v.code : v.kind).toBe(expected);
      if (v.kind === 'refuse') expect(v.reason).toMatch(/session_age drift: .*past 75% of its maximum 4h/);
    }
  });

  it('geo and age warnings together refuse at threshold 2 but not at the default 3; the session lives on', async () => {
    for (const [warningThreshold, expected] of [
      [undefined, 'permit'],
      [2, 'DRIFT_DETECTED'],
    ] as const) {
      const clock = manualClock();
      const gate = Gate.fromDict(OPEN, { clock: clock.now, drift: { geoDriftMaxKm: 500, maxSessionAge: '4h', warningThreshold } });
      expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.5', geo: BANGALORE }))).toBe('permit');
      expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.6', geo: CHENNAI }))).toBe('permit');
      clock.advance(3.5 * HOUR);
      const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '2.3.4.6', geo: CHENNAI }));
      expect(v.kind === 'refuse' ? v.code : v.kind).toBe(expected);
      if (v.kind === 'refuse') expect(v.reason).toMatch(/^session_age\+geo drift: 2 warnings at once \(threshold 2\)/);
      expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.5', geo: BANGALORE }))).toBe('permit');
    }
  });

  it('all three at once refuse at the default threshold, naming each', async () => {
    const clock = manualClock();
    const gate = Gate.fromDict(OPEN, {
      clock: clock.now,
      drift: { geoDriftMaxKm: 500, warnActionsPerMinute: 1, maxActionsPerMinute: 100 },
    });
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.5', geo: BANGALORE }))).toBe('permit');
    clock.advance(3.5 * HOUR);
    expect(await outcome(gate, ctx({ sessionId: 's1', ip: '2.3.4.6', geo: CHENNAI }))).toBe('permit');
    const v = await gate.evaluate(ctx({ sessionId: 's1', ip: '2.3.4.6', geo: CHENNAI }));
    expect(v).toMatchObject({ kind: 'refuse', code: 'DRIFT_DETECTED' });
    expect(v.kind === 'refuse' && v.reason).toMatch(/^session_age\+geo\+behaviour drift: 3 warnings at once \(threshold 3\)/);
  });
});

describe('drift defaults and thresholds', () => {
  it('match Kavach where DRIFT_DEFAULTS says so: sessions older than 4h are invalidated', async () => {
    expect(DRIFT_DEFAULTS).toMatchObject({ maxSessionAge: '4h', warningThreshold: 3, warnActionsPerMinute: 120, maxActionsPerMinute: 600 });
    const clock = manualClock();
    const gate = Gate.fromDict(OPEN, { clock: clock.now });
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('permit');
    clock.advance(4 * 3_600_000 + 1);
    expect(await outcome(gate, ctx({ sessionId: 's1' }))).toBe('invalidate');
  });

  it('any positive finite behaviour threshold is accepted, and one above 1,000 calls a minute still trips', async () => {
    expect(() => Gate.fromDict(OPEN, { drift: { warnActionsPerMinute: 50_000, maxActionsPerMinute: 1e9 } })).not.toThrow();
    const gate = Gate.fromDict(OPEN, { drift: { warnActionsPerMinute: 1_200, maxActionsPerMinute: 1_500 } });
    const seen: string[] = [];
    for (let i = 0; i < 1_502; i++) seen.push(await outcome(gate, ctx({ sessionId: 'busy-service' })));
    expect(seen.slice(0, 1_200).every((o) => o === 'permit')).toBe(true);
    expect(seen[1_200]).toBe('DRIFT_DETECTED');
    expect(seen[1_499]).toBe('DRIFT_DETECTED');
    expect(seen.slice(1_500)).toEqual(['invalidate', 'SESSION_INVALID']);
  });

  it('the session store keeps the recent calls it is asked to keep (recentLimit), and 1,000 by default', () => {
    const store = new InMemorySessionStore();
    const observe = (sessionId: string, recentLimit?: number) =>
      store.observe({
        principalId: 'p',
        sessionId,
        now: 1_000,
        behaviourWindowMs: 60_000,
        ...(recentLimit === undefined ? {} : { recentLimit }),
      });
    let last: unknown;
    for (let i = 0; i < 3_000; i++) last = observe('wide', 2_500);
    expect(last).toMatchObject({ session: { recentCalls: 2_500, actionCount: 3_000 } });
    for (let i = 0; i < 1_200; i++) last = observe('default');
    expect(last).toMatchObject({ session: { recentCalls: 1_000 } });
    expect(() => observe('bad', 0)).toThrow(/recentLimit/);
    expect(() => observe('bad', Number.NaN)).toThrow(/recentLimit/);
  });
});
