import { describe, expect, it } from 'vitest';
import { Gate, InMemoryBus, type IssuedPermit, type PermitIssuer, type PermitRequest } from '../../src/index.ts';

const policy = {
  policies: [{ name: 'small', effect: 'permit', conditions: [{ param_max: { field: 'amount', max: 100 } }] }],
};
const call = (amount: number, ip = '203.0.113.7') => ({
  principalId: 'bot',
  principalKind: 'agent' as const,
  actionName: 'refunds.issue',
  params: { amount },
  sessionId: 's1',
  ip,
});
const fakeSigner: PermitIssuer = {
  async issue(req: PermitRequest): Promise<IssuedPermit> {
    return { token: `token-for-${req.evaluationId}`, id: `jti-${req.evaluationId}` };
  },
};

describe('evaluate(ctx, { observe: true }) on an enforcing gate', () => {
  it('permits a refused call, reporting the real refusal in observed', async () => {
    const gate = Gate.fromDict(policy, { drift: false });
    const v = await gate.evaluate(call(500), { observe: true });
    expect(v.kind).toBe('permit');
    expect(v.kind === 'permit' && v.observed?.kind).toBe('refuse');
    expect(v.kind === 'permit' && v.permit).toBeUndefined();
    // The same call without the flag is still refused: the gate keeps enforcing for others.
    expect((await gate.evaluate(call(500))).kind).toBe('refuse');
  });

  it('does not invalidate or broadcast a drifting session it only observes', async () => {
    const bus = new InMemoryBus();
    const published: unknown[] = [];
    bus.subscribe((m) => published.push(m));
    const gate = Gate.fromDict(policy, { drift: { ipGeo: 'strict' }, bus });
    expect((await gate.evaluate(call(10))).kind).toBe('permit');
    const observed = await gate.evaluate(call(10, '198.51.100.9'), { observe: true });
    expect(observed.kind === 'permit' && observed.observed?.kind).toBe('invalidate');
    expect(published).toHaveLength(0);
    // The session is still alive for an enforced call from its own IP.
    expect((await gate.evaluate(call(10))).kind).toBe('permit');
  });

  it('signs a call enforcement would have permitted, so tools that require permits keep working', async () => {
    const gate = Gate.fromDict(policy, { drift: false, signer: fakeSigner, observeOnly: true });
    const v = await gate.evaluate(call(10));
    expect(v.kind === 'permit' && v.permit).toMatch(/^token-for-/);
    expect(v.kind === 'permit' && v.observed?.kind).toBe('permit');
    const refused = await gate.evaluate(call(500));
    expect(refused.kind === 'permit' && refused.permit).toBeUndefined();
    expect(refused.kind === 'permit' && refused.observed?.kind).toBe('refuse');
  });
});
