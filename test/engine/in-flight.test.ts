// A call in flight (its permit being signed, its rate store answering) when the policies are
// reloaded, the kill switch pressed or its session invalidated: the gate re-checks before it
// permits, so nothing decided under the old state gets through.
import { describe, expect, it } from 'vitest';
import { Gate, InMemoryBus, InMemoryRateStore, type ActionContext, type GateEvent, type RateStore } from '../../src/engine/index.ts';
import { code, ctx, gateOf, heldSigner, permitWith, untilHeld } from './helpers.ts';

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
      checkAndCharge: (charges, id, now) =>
        new Promise((resolve) => {
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
    const bus = {
      publish: () => undefined,
      subscribe: (h: (m: never) => void) => ((deliver = h as (m: unknown) => void), () => undefined),
    };
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
