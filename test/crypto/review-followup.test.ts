// Follow-up review of src/crypto and the permit/keygen CLI (2026-11-26); each test failed before its fix.
import { beforeAll, describe, expect, it } from 'vitest';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier, type PermitExpectation } from '../../src/crypto/permit-verifier.ts';
import type { SignatureMode } from '../../src/crypto/signatures.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { T0, rejectsWith } from './helpers.ts';

let kp: KeyPair;

beforeAll(() => {
  kp = KeyPair.generate({ now: T0 });
});

async function issue(signer: KeyPair, mode: SignatureMode, opts: { now?: number; sessionId?: string } = {}): Promise<string> {
  const now = opts.now ?? T0;
  const s = PermitSigner.fromKeyPair(signer, { mode, pool: false });
  try {
    return (await s.issue({
      principalId: 'alice', principalKind: 'agent', action: 'fs.read', args: { path: '/a' }, evaluationId: 'e-1',
      audience: 'fs', issuedAt: now, expiresAt: now + 30_000, ...(opts.sessionId !== undefined ? { sessionId: opts.sessionId } : {}),
    })).token;
  } finally {
    await s.close();
  }
}

describe('PermitVerifier: expected principal and session', () => {
  const verifier = (replay?: InMemoryReplayStore) =>
    new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'fs', clock: () => T0, ...(replay ? { replay } : {}) });
  const call: PermitExpectation = { action: 'fs.read', args: { path: '/a' } };

  it('accepts a permit for the expected principal and session', async () => {
    const token = await issue(kp, 'hybrid', { sessionId: 's-1' });
    const claims = await verifier().verify(token, { ...call, principal: 'alice', session: 's-1' });
    expect(claims).toMatchObject({ sub: 'alice', sid: 's-1' });
  });

  it('refuses a permit for another principal (WRONG_PRINCIPAL)', async () => {
    const token = await issue(kp, 'hybrid', { sessionId: 's-1' });
    await rejectsWith(verifier().verify(token, { ...call, principal: 'bob' }), 'WRONG_PRINCIPAL');
  });

  it('refuses a permit for another session, or for no session, when one is expected (WRONG_SESSION)', async () => {
    await rejectsWith(verifier().verify(await issue(kp, 'hybrid', { sessionId: 's-1' }), { ...call, session: 's-2' }), 'WRONG_SESSION');
    await rejectsWith(verifier().verify(await issue(kp, 'hybrid'), { ...call, session: 's-1' }), 'WRONG_SESSION');
  });

  it('does not use up a permit it refuses for its principal or session', async () => {
    const replay = new InMemoryReplayStore();
    const v = verifier(replay);
    const token = await issue(kp, 'hybrid', { sessionId: 's-1' });
    await rejectsWith(v.verify(token, { ...call, principal: 'mallory', session: 's-1' }), 'WRONG_PRINCIPAL');
    await rejectsWith(v.verify(token, { ...call, principal: 'alice', session: 's-9' }), 'WRONG_SESSION');
    expect((await v.verify(token, { ...call, principal: 'alice', session: 's-1' })).jti).toBeTruthy();
    await rejectsWith(v.verify(token, { ...call, principal: 'alice', session: 's-1' }), 'REPLAYED');
  });
});
