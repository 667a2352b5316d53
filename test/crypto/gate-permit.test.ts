import { beforeAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory } from '../../src/crypto/key-directory.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { T0, rejectsWith } from './helpers.ts';

const POLICY = { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read*' }] }] };
const ARGS = { path: '/work/a.txt', limit: 10 };

let kp: KeyPair;
let now = T0;

beforeAll(() => {
  kp = KeyPair.generate({ now: T0 });
});

function gateWith(signer: PermitSigner, ttl?: number): Gate {
  return Gate.fromDict(POLICY, { signer, clock: () => now, drift: false, ...(ttl ? { permitTtlMs: ttl } : {}) });
}

describe('a gate with a PermitSigner', () => {
  it('signs every permit, and the tool verifies it bound to its action and args', async () => {
    now = T0;
    const gate = gateWith(PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }));
    const verdict = await gate.evaluate({
      principalId: 'alice',
      principalKind: 'agent',
      actionName: 'fs.read_file',
      params: ARGS,
      sessionId: 'sess-9',
      audience: 'fs',
    });
    expect(verdict.kind).toBe('permit');
    if (verdict.kind !== 'permit') return;
    expect(verdict.permit).toMatch(/^kv1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const tool = new PermitVerifier({
      keys: PublicKeyDirectory.inMemory([kp.publicKeys()]),
      mode: 'hybrid',
      audience: 'fs',
      replay: new InMemoryReplayStore(),
      clock: () => now,
    });
    const claims = await tool.verify(verdict.permit as string, { action: 'fs.read_file', args: { limit: 10, path: '/work/a.txt' } });
    expect(claims).toMatchObject({
      sub: 'alice',
      knd: 'agent',
      act: 'fs.read_file',
      aud: 'fs',
      sid: 'sess-9',
      eid: verdict.evaluationId,
      iat: T0,
      exp: T0 + 30_000,
    });
    expect(claims.jti).toBe(verdict.permitId);
    await rejectsWith(tool.verify(verdict.permit as string, { action: 'fs.read_file', args: ARGS }), 'REPLAYED');
    await gate.close();
  });

  it("uses the gate's permitTtlMs for exp", async () => {
    now = T0;
    const gate = gateWith(PermitSigner.fromKeyPair(kp, { mode: 'pq' }), 5_000);
    const verdict = await gate.evaluate({ principalId: 'bob', principalKind: 'service', actionName: 'fs.read_dir' });
    if (verdict.kind !== 'permit') throw new Error('expected a permit');
    const tool = new PermitVerifier({ keys: kp.publicKeys(), mode: 'pq', clock: () => now });
    const claims = await tool.verify(verdict.permit as string, { action: 'fs.read_dir', args: undefined });
    expect(claims.exp - claims.iat).toBe(5_000);
    now = T0 + 7_000;
    await rejectsWith(tool.verify(verdict.permit as string), 'EXPIRED');
    await gate.close();
  });

  it('refuses SIGNING_FAILED when the key has expired', async () => {
    now = T0 + 120_000;
    const shortLived = KeyPair.generate({ now: T0, expiresInMs: 60_000 });
    const gate = gateWith(PermitSigner.fromKeyPair(shortLived, { mode: 'hybrid' }));
    const verdict = await gate.evaluate({ principalId: 'alice', principalKind: 'agent', actionName: 'fs.read_file', params: ARGS });
    expect(verdict).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED' });
    await gate.close();
  });
});
