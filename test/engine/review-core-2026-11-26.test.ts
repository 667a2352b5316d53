import { describe, expect, it } from 'vitest';
import {
  Gate, InMemoryBus, InMemoryRateStore, InMemorySessionStore,
  type ActionContext, type GateEvent, type PermitIssuer, type RateStore, type SessionStore, type Verdict,
} from '../../src/engine/index.ts';
import { code, ctx, gateOf, permitWith } from './helpers.ts';

/** A signer that holds every request until released: lets a test act while a call is mid-evaluation. */
function heldSigner(): PermitIssuer & { waiting: () => number; release: () => void } {
  const pending: Array<() => void> = [];
  let waiters: Array<() => void> = [];
  return {
    issue: (r) => new Promise((resolve) => {
      pending.push(() => resolve({ token: `tok-${r.evaluationId}`, id: `jti-${r.evaluationId}` }));
      for (const w of waiters) w();
      waiters = [];
    }),
    waiting: () => pending.length,
    release: () => {
      for (const p of pending.splice(0)) p();
    },
  };
}

/** Resolves once the signer holds `n` requests (no timers: robust under load). */
async function untilHeld(signer: { waiting: () => number }, n = 1): Promise<void> {
  for (let i = 0; i < 10_000 && signer.waiting() < n; i++) await new Promise((r) => setImmediate(r));
  expect(signer.waiting()).toBeGreaterThanOrEqual(n);
}

const OPEN = permitWith([]);

describe('a reload or the kill switch while a call is mid-evaluation', () => {
  it('the kill switch pressed while a permit is being signed refuses that call', async () => {
    const signer = heldSigner();
    const gate = gateOf(OPEN, { signer });
    const pending = gate.evaluate(ctx());
    await untilHeld(signer);
    gate.reload('');
    signer.release();
    const v = await pending;
    expect(code(v)).toBe('NO_POLICY_MATCH');
    expect(v.kind === 'permit' && v.permit).toBeFalsy();
  });

  it('a reload that no longer permits the action refuses a call mid-signing; one that still permits it lets it through', async () => {
    const signer = heldSigner();
    const gate = gateOf(permitWith([{ action: 'tool.*' }]), { signer });
    const first = gate.evaluate(ctx());
    await untilHeld(signer);
    gate.reload({ policies: [{ name: 'q', effect: 'permit', conditions: [{ action: 'other.*' }] }] });
    signer.release();
    expect(code(await first)).toBe('NO_POLICY_MATCH');

    gate.reload(permitWith([{ action: 'tool.*' }]));
    const second = gate.evaluate(ctx());
    await untilHeld(signer);
    gate.reload({ policies: [{ name: 'r', effect: 'permit', conditions: [{ action: 'tool.run' }] }] });
    signer.release();
    const v = await second;
    expect(v.kind).toBe('permit');
    expect(v.kind === 'permit' && v.permit).toBeTruthy();
  });

  it('a reloaded refuse policy or file invariant applies to a call mid-signing, and its charge is taken back', async () => {
    const signer = heldSigner();
    const rate = new InMemoryRateStore();
    const gate = gateOf(permitWith([{ rate_limit: { max: 1, window: '1h' } }]), { signer, stores: { rate } });
    const first = gate.evaluate(ctx({ params: { amount: 50 } }));
    await untilHeld(signer);
    gate.reload({
      policies: [{ name: 'p', effect: 'permit', conditions: [{ rate_limit: { max: 1, window: '1h' } }] }],
      invariant: [{ name: 'cap', param_max: { field: 'amount', max: 10 } }],
    });
    signer.release();
    expect(await first).toMatchObject({ kind: 'refuse', code: 'INVARIANT_VIOLATION' });
    // The refused call's charge was refunded: the one call the limit allows still fits.
    const second = gate.evaluate(ctx({ params: { amount: 5 } }));
    await untilHeld(signer);
    signer.release();
    expect(code(await second)).toBe('permit');

    const third = gate.evaluate(ctx({ principalId: 'agent-2', params: { amount: 5, op: 'drop' } }));
    await untilHeld(signer);
    gate.reload({
      policies: [
        { name: 'p', effect: 'permit', conditions: [] },
        { name: 'no_drop', effect: 'refuse', conditions: [{ param_in: { field: 'op', values: ['drop'] } }] },
      ],
    });
    signer.release();
    expect(await third).toMatchObject({ kind: 'refuse', code: 'POLICY_DENIED', policy: 'no_drop' });
  });

  it('the kill switch during a slow rate-store answer (no signer, no audit) refuses the call', async () => {
    let answer: (() => void) | undefined;
    const inner = new InMemoryRateStore();
    const slow: RateStore = {
      checkAndCharge: (charges, id, now) => new Promise((resolve) => {
        answer = () => resolve(inner.checkAndCharge(charges, id, now));
      }),
      refund: (charges, id) => inner.refund(charges, id),
    };
    const gate = gateOf(permitWith([{ rate_limit: { max: 5, window: '1h' } }]), { stores: { rate: slow } });
    const pending = gate.evaluate(ctx());
    for (let i = 0; i < 1000 && !answer; i++) await new Promise((r) => setImmediate(r));
    gate.reload('');
    answer?.();
    expect(code(await pending)).toBe('NO_POLICY_MATCH');
  });

  it('the audit log records the refusal, not the permit, when the kill switch lands mid-signing', async () => {
    const signer = heldSigner();
    const events: GateEvent[] = [];
    const gate = gateOf(OPEN, { signer, audit: { append: async (e) => void events.push(e) } });
    const pending = gate.evaluate(ctx());
    await untilHeld(signer);
    gate.reload('');
    signer.release();
    await pending;
    const verdicts = events.filter((e) => e.type === 'verdict');
    expect(verdicts).toHaveLength(1);
    expect(verdicts[0]).toMatchObject({ verdict: 'refuse', code: 'NO_POLICY_MATCH' });
    expect(verdicts[0]).not.toHaveProperty('permit');
  });
});

describe('an invalidation while a call of that session is mid-evaluation', () => {
  const inSession = (over: Partial<ActionContext> = {}) => ctx({ sessionId: 's1', ...over });

  it('gate.invalidate of the session refuses the call being signed (SESSION_INVALID)', async () => {
    const signer = heldSigner();
    const gate = gateOf(OPEN, { signer });
    const pending = gate.evaluate(inSession());
    await untilHeld(signer);
    await gate.invalidate({ type: 'session', sessionId: 's1' });
    signer.release();
    const v = await pending;
    expect(code(v)).toBe('SESSION_INVALID');
  });

  it('principal and global scopes do too; another session or principal is not touched', async () => {
    const signer = heldSigner();
    const gate = gateOf(OPEN, { signer });
    const mine = gate.evaluate(inSession());
    const other = gate.evaluate(ctx({ principalId: 'agent-2', sessionId: 's2' }));
    const sessionless = gate.evaluate(ctx());
    await untilHeld(signer, 3);
    await gate.invalidate({ type: 'principal', principalId: 'agent-1' });
    signer.release();
    expect(code(await mine)).toBe('SESSION_INVALID');
    expect(code(await other)).toBe('permit');
    // Principal cutoffs apply to sessions (as in the store); a call without one is not in a session.
    expect(code(await sessionless)).toBe('permit');

    const a = gate.evaluate(ctx({ principalId: 'agent-3', sessionId: 's3' }));
    await untilHeld(signer);
    await gate.invalidate({ type: 'global' });
    signer.release();
    expect(code(await a)).toBe('SESSION_INVALID');
  });

  it('an invalidation from another replica, over the bus, refuses the call being signed here', async () => {
    const bus = new InMemoryBus();
    const signer = heldSigner();
    const here = gateOf(OPEN, { signer, bus });
    const there = gateOf(OPEN, { bus });
    const pending = here.evaluate(inSession());
    await untilHeld(signer);
    await there.invalidate({ type: 'session', sessionId: 's1' });
    signer.release();
    expect(code(await pending)).toBe('SESSION_INVALID');
  });

  it('a bus message the gate cannot read, arriving mid-signing, refuses that session call and never makes evaluate throw', async () => {
    let deliver: ((m: unknown) => void) | undefined;
    const bus = { publish: () => undefined, subscribe: (h: (m: never) => void) => ((deliver = h as (m: unknown) => void), () => undefined) };
    const signer = heldSigner();
    const gate = gateOf(OPEN, { signer, bus });
    const inSessionCall = gate.evaluate(inSession());
    const sessionless = gate.evaluate(ctx());
    await untilHeld(signer, 2);
    deliver?.({ scope: undefined, reason: 5, at: 0, origin: 'elsewhere' });
    signer.release();
    await expect(inSessionCall).resolves.toMatchObject({ kind: 'refuse', code: 'SESSION_INVALID' });
    await expect(sessionless).resolves.toMatchObject({ kind: 'permit' });
  });

  it('a drift violation by one call invalidates the other call of that session still being signed', async () => {
    const signer = heldSigner();
    const gate = Gate.fromDict(OPEN, { signer, drift: { ipGeo: 'strict' } });
    const legit = gate.evaluate(inSession({ ip: '203.0.113.7' }));
    await untilHeld(signer);
    const hijack = await gate.evaluate(inSession({ ip: '198.51.100.9' }));
    expect(hijack.kind).toBe('invalidate');
    signer.release();
    expect(code(await legit)).toBe('SESSION_INVALID');
  });

  it('a charge is taken back when an invalidation refuses the call', async () => {
    const signer = heldSigner();
    const gate = gateOf(permitWith([{ rate_limit: { max: 1, window: '1h', per: 'principal' } }]), { signer });
    const pending = gate.evaluate(inSession());
    await untilHeld(signer);
    await gate.invalidate({ type: 'session', sessionId: 's1' });
    signer.release();
    expect(code(await pending)).toBe('SESSION_INVALID');
    const next = gate.evaluate(ctx({ sessionId: 's-new' }));
    await untilHeld(signer);
    signer.release();
    expect(code(await next)).toBe('permit');
  });

  it('observe mode reports the late invalidation in observed and still permits', async () => {
    const signer = heldSigner();
    const gate = gateOf(OPEN, { signer });
    const pending = gate.evaluate(inSession(), { observe: true });
    await untilHeld(signer);
    await gate.invalidate({ type: 'session', sessionId: 's1' });
    signer.release();
    const v = await pending;
    expect(v.kind).toBe('permit');
    expect(v.kind === 'permit' && v.observed).toMatchObject({ kind: 'refuse', code: 'SESSION_INVALID' });
  });
});

describe('a session store answer the gate cannot use is a store failure, not a session-less call', () => {
  const broken = (answer: unknown): SessionStore => ({
    observe: () => answer as ReturnType<SessionStore['observe']>,
    invalidate: () => undefined,
  });
  const cases: Array<[string, unknown]> = [
    ['no session', { invalid: false }],
    ['an empty object', {}],
    ['invalid as a string', { invalid: 'false', session: { principalId: 'agent-1', startedAt: 0, actionCount: 1, recentCalls: 1 } }],
    ['a session without its principal', { invalid: false, session: { startedAt: 0, actionCount: 1, recentCalls: 1 } }],
    ['a session with a non-numeric call count', { invalid: false, session: { principalId: 'agent-1', startedAt: 0, actionCount: 1, recentCalls: 'many' } }],
    ['a session with no start time', { invalid: false, session: { principalId: 'agent-1', actionCount: 1, recentCalls: 1 } }],
  ];
  for (const [name, answer] of cases) {
    it(`${name} → STORE_UNAVAILABLE`, async () => {
      const gate = Gate.fromDict(OPEN, { stores: { session: broken(answer) } });
      expect(code(await gate.evaluate(ctx({ sessionId: 's1' })))).toBe('STORE_UNAVAILABLE');
    });
  }

  it('a well-formed answer still permits, with drift checked against it', async () => {
    const ok = broken({ invalid: false, session: { principalId: 'agent-1', startedAt: Date.now(), actionCount: 1, recentCalls: 1, originIp: '203.0.113.7' } });
    const gate = Gate.fromDict(OPEN, { stores: { session: ok } });
    expect(code(await gate.evaluate(ctx({ sessionId: 's1', ip: '203.0.113.7' })))).toBe('permit');
    expect(code(await gate.evaluate(ctx({ sessionId: 's1', ip: '198.51.100.9' })))).toBe('invalidate');
  });

  it('a rate store that admits with anything but true (a string, a number) is a store failure too', async () => {
    for (const answer of [{ admitted: 'false', index: 0 }, { admitted: 1 }, { admitted: 'yes' }]) {
      const rate: RateStore = { checkAndCharge: () => answer as never, refund: () => undefined };
      const gate = gateOf(permitWith([{ rate_limit: { max: 1, window: '1h' } }]), { stores: { rate } });
      expect(code(await gate.evaluate(ctx()))).toBe('STORE_UNAVAILABLE');
    }
  });

  it('the in-memory store keeps working', async () => {
    const gate = Gate.fromDict(OPEN, { stores: { session: new InMemorySessionStore() } });
    const v: Verdict = await gate.evaluate(ctx({ sessionId: 's1' }));
    expect(v.kind).toBe('permit');
  });
});

describe('roles are read by the gate, not by the array they came in', () => {
  it('an array with its own map (or a subclass overriding it) cannot hand back unchecked roles', async () => {
    const gate = gateOf(permitWith([{ identity_role: 'admin' }]));
    const ownMap = ['guest'];
    Object.defineProperty(ownMap, 'map', { value: () => ['admin', 'evil\nrole', { toString: () => 'admin' }] });
    class Sneaky extends Array<string> {
      override map<U>(): U[] {
        return ['admin\u0000'] as U[];
      }
    }
    const sneaky = Sneaky.from(['guest']) as Sneaky;
    for (const roles of [ownMap, sneaky]) {
      expect(await gate.evaluate({ ...ctx(), roles } as ActionContext)).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH' });
    }
    const bad = ['ok'];
    Object.defineProperty(bad, 'map', { value: () => ['fine'] });
    bad.push('bad\nrole');
    expect(await gate.evaluate({ ...ctx(), roles: bad } as ActionContext)).toMatchObject({ kind: 'refuse', code: 'INVALID_CONTEXT' });
    expect(code(await gate.evaluate(ctx({ roles: ['admin'] })))).toBe('permit');
  });
});

describe('IP addresses are bounded like every other identifier', () => {
  it('an IPv6 zone of any length (which node:net isIP accepts) is INVALID_CONTEXT; ordinary zones and mapped addresses pass', async () => {
    const gate = gateOf(OPEN);
    for (const key of ['ip', 'originIp'] as const) {
      expect(await gate.evaluate(ctx({ [key]: `fe80::1%${'a'.repeat(100_000)}` }))).toMatchObject({ kind: 'refuse', code: 'INVALID_CONTEXT' });
    }
    for (const ip of ['fe80::1%eth0', '::ffff:203.0.113.7', 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', '203.0.113.7']) {
      expect(code(await gate.evaluate(ctx({ ip })))).toBe('permit');
    }
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

describe('a charge is refunded at most once', () => {
  it('observe mode with a failing signer and a failing audit log refunds the call once', async () => {
    const inner = new InMemoryRateStore();
    const refunds: string[] = [];
    const rate: RateStore = {
      checkAndCharge: (charges, id, now) => inner.checkAndCharge(charges, id, now),
      refund: (charges, id) => {
        refunds.push(id);
        inner.refund(charges, id);
      },
    };
    const gate = gateOf(permitWith([{ rate_limit: { max: 2, window: '1h' } }]), {
      observeOnly: true,
      stores: { rate },
      signer: { issue: async () => { throw new Error('hsm offline'); } },
      audit: { append: async () => { throw new Error('disk full'); } },
    });
    const v = await gate.evaluate(ctx());
    expect(code(v)).toBe('STORE_UNAVAILABLE');
    expect(refunds).toHaveLength(1);
  });
});

describe('a retried callId rides free only as the very same call', () => {
  it('another resource, audience or session under one callId is charged as a new call', async () => {
    const gate = gateOf(permitWith([{ budget: { field: 'amount', max: 100, window: '1d', per: 'principal' } }]));
    const call = (over: Partial<ActionContext> = {}) => ctx({ callId: 'c1', params: { amount: 80 }, resource: 'acct:1', audience: 'payments', sessionId: 's1', ...over });
    expect(code(await gate.evaluate(call()))).toBe('permit');
    expect(code(await gate.evaluate(call()))).toBe('permit');
    expect(code(await gate.evaluate(call({ resource: 'acct:2' })))).toBe('RATE_LIMITED');
    expect(code(await gate.evaluate(call({ audience: 'ledger' })))).toBe('RATE_LIMITED');
    expect(code(await gate.evaluate(call({ sessionId: 's2' })))).toBe('RATE_LIMITED');
    expect(code(await gate.evaluate(call()))).toBe('permit');
  });
});
