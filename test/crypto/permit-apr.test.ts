import { beforeAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { T0, claimsBytes, forge, parts, rejectsWith } from './helpers.ts';

const POLICY = {
  policies: [
    { name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read' }] },
    { name: 'writes', effect: 'approve', conditions: [{ action: 'fs.write' }] },
  ],
};
const ARGS = { path: '/work/a.txt' };

let kp: KeyPair;
beforeAll(() => {
  kp = KeyPair.generate({ now: T0 });
});

describe('the apr claim', () => {
  it("an approved call's permit carries the approval id; the verifier hands it back", async () => {
    const gate = Gate.fromDict(POLICY, { signer: PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }), clock: () => T0, drift: false });
    const call = { principalId: 'agent-1', principalKind: 'agent' as const, actionName: 'fs.write', params: ARGS, audience: 'fs' };
    const asked = await gate.evaluate(call);
    if (asked.kind !== 'refuse' || !asked.approval) throw new Error('expected APPROVAL_REQUIRED');
    await gate.approvals.decide(asked.approval.id, { approver: { id: 'alice', kind: 'user' }, decision: 'grant' });
    const permit = await gate.evaluate(call);
    if (permit.kind !== 'permit' || !permit.permit) throw new Error('expected a signed permit');
    const verifier = new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'fs', clock: () => T0 });
    const claims = await verifier.verify(permit.permit, { action: 'fs.write', args: ARGS });
    expect(claims.apr).toBe(asked.approval.id);
    await gate.close();
  });

  it('a permit no approval stood behind has no apr, and stays valid as before', async () => {
    const gate = Gate.fromDict(POLICY, { signer: PermitSigner.fromKeyPair(kp, { mode: 'pq' }), clock: () => T0, drift: false });
    const permit = await gate.evaluate({ principalId: 'agent-1', principalKind: 'agent', actionName: 'fs.read', params: ARGS });
    if (permit.kind !== 'permit' || !permit.permit) throw new Error('expected a signed permit');
    expect('apr' in parts(permit.permit).claims).toBe(false);
    const claims = await new PermitVerifier({ keys: kp.publicKeys(), mode: 'pq', clock: () => T0 }).verify(permit.permit, {
      action: 'fs.read',
      args: ARGS,
    });
    expect(claims.apr).toBeUndefined();
    await gate.close();
  });

  it('an apr added to a signed permit breaks its signature; an empty apr is malformed', async () => {
    const gate = Gate.fromDict(POLICY, { signer: PermitSigner.fromKeyPair(kp, { mode: 'pq' }), clock: () => T0, drift: false });
    const permit = await gate.evaluate({ principalId: 'agent-1', principalKind: 'agent', actionName: 'fs.read', params: ARGS });
    if (permit.kind !== 'permit' || !permit.permit) throw new Error('expected a signed permit');
    const { claims, sigB64 } = parts(permit.permit);
    const verifier = new PermitVerifier({ keys: kp.publicKeys(), mode: 'pq', clock: () => T0 });
    const grafted = `kv1.${Buffer.from(claimsBytes({ ...claims, apr: 'a-forged-approval' })).toString('base64url')}.${sigB64}`;
    await rejectsWith(verifier.verify(grafted), 'BAD_SIGNATURE');
    await rejectsWith(verifier.verify(await forge(kp, 'pq', claimsBytes({ ...claims, apr: '' }))), 'BAD_FORMAT');
    await gate.close();
  });
});
