import { beforeAll, describe, expect, it } from 'vitest';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory } from '../../src/crypto/key-directory.ts';
import { ENVELOPE_BYTES, signEnvelope, verifyEnvelope, type KeyLookup } from '../../src/crypto/signatures.ts';
import { T0, b64, flipBit, rejectsWith, unb64 } from './helpers.ts';

let kp: KeyPair;
let other: KeyPair;
let expiring: KeyPair;
const msg = new TextEncoder().encode('checkpoint size=42 head=abc');

beforeAll(() => {
  kp = KeyPair.generate({ now: T0 });
  other = KeyPair.generate({ now: T0 });
  expiring = KeyPair.generate({ now: T0, expiresInMs: 1_000 });
});

describe('signature envelopes', () => {
  it.each(['hybrid', 'pq'] as const)('%s: verify against a bundle or a directory and name the signer', async (mode) => {
    const env = await signEnvelope(kp, mode, 'audit-checkpoint', msg);
    expect(unb64(env)).toHaveLength(ENVELOPE_BYTES[mode]);
    expect(await verifyEnvelope(kp.publicKeys(), mode, 'audit-checkpoint', msg, env)).toEqual({ kid: kp.kid });
    const dir = PublicKeyDirectory.inMemory([other.publicKeys(), kp.publicKeys()]);
    expect(await verifyEnvelope(dir, mode, 'audit-checkpoint', msg, env)).toEqual({ kid: kp.kid });
  });

  it("verify against any key lookup, asking it for the signer's kid only", async () => {
    const env = await signEnvelope(kp, 'hybrid', 'audit-checkpoint', msg);
    const asked: string[] = [];
    const lookup: KeyLookup = { get: (kid) => (asked.push(kid), kid === kp.kid ? kp.publicKeys() : undefined) };
    expect(await verifyEnvelope(lookup, 'hybrid', 'audit-checkpoint', msg, env)).toEqual({ kid: kp.kid });
    expect(asked).toEqual([kp.kid]);
    await rejectsWith(verifyEnvelope({ get: () => undefined }, 'hybrid', 'audit-checkpoint', msg, env), 'UNKNOWN_KEY');
  });

  it('are bound to their domain (another domain → BAD_SIGNATURE)', async () => {
    const env = await signEnvelope(kp, 'hybrid', 'invalidation', msg);
    await rejectsWith(verifyEnvelope(kp.publicKeys(), 'hybrid', 'audit-checkpoint', msg, env), 'BAD_SIGNATURE');
  });

  it('are bound to the message (one changed byte → BAD_SIGNATURE)', async () => {
    const env = await signEnvelope(kp, 'hybrid', 'invalidation', msg);
    await rejectsWith(verifyEnvelope(kp.publicKeys(), 'hybrid', 'invalidation', flipBit(msg, 3), env), 'BAD_SIGNATURE');
  });

  it('refuse the other mode (ALG_MISMATCH)', async () => {
    const env = await signEnvelope(kp, 'pq', 'invalidation', msg);
    await rejectsWith(verifyEnvelope(kp.publicKeys(), 'hybrid', 'invalidation', msg, env), 'ALG_MISMATCH');
  });

  it('refuse a signer that is not the given bundle or not in the directory (UNKNOWN_KEY)', async () => {
    const env = await signEnvelope(other, 'hybrid', 'invalidation', msg);
    await rejectsWith(verifyEnvelope(kp.publicKeys(), 'hybrid', 'invalidation', msg, env), 'UNKNOWN_KEY');
    await rejectsWith(verifyEnvelope(PublicKeyDirectory.inMemory([kp.publicKeys()]), 'hybrid', 'invalidation', msg, env), 'UNKNOWN_KEY');
  });

  it('refuse a valid signature by an expired key (KEY_EXPIRED) at the injected time', async () => {
    const env = await signEnvelope(expiring, 'hybrid', 'invalidation', msg);
    await verifyEnvelope(expiring.publicKeys(), 'hybrid', 'invalidation', msg, env, { now: T0 + 999 });
    await rejectsWith(verifyEnvelope(expiring.publicKeys(), 'hybrid', 'invalidation', msg, env, { now: T0 + 1_000 }), 'KEY_EXPIRED');
  });

  it('refuse malformed envelopes (BAD_FORMAT)', async () => {
    const env = await signEnvelope(kp, 'hybrid', 'invalidation', msg);
    for (const bad of ['', 'not base64!', `${env}A`, env.slice(0, -4), b64(flipBit(unb64(env), 0)), `${env}=`]) {
      await rejectsWith(verifyEnvelope(kp.publicKeys(), 'hybrid', 'invalidation', msg, bad), 'BAD_FORMAT');
    }
  });

  it('refuse a hybrid envelope with the Ed25519 half stripped, even relabelled PQ', async () => {
    const bytes = unb64(await signEnvelope(kp, 'hybrid', 'invalidation', msg));
    const stripped = bytes.slice(0, bytes.length - 64);
    stripped[1] = 0x01;
    await rejectsWith(verifyEnvelope(kp.publicKeys(), 'pq', 'invalidation', msg, b64(stripped)), 'BAD_SIGNATURE');
  });

  it('refuse either half alone being wrong', async () => {
    const a = unb64(await signEnvelope(kp, 'hybrid', 'invalidation', msg));
    const b = unb64(await signEnvelope(kp, 'hybrid', 'invalidation', flipBit(msg, 0)));
    const mixPq = a.slice();
    mixPq.set(b.subarray(18, 18 + 3309), 18); // ML-DSA half from another message
    const mixEd = a.slice();
    mixEd.set(b.subarray(18 + 3309), 18 + 3309); // Ed25519 half from another message
    await rejectsWith(verifyEnvelope(kp.publicKeys(), 'hybrid', 'invalidation', msg, b64(mixPq)), 'BAD_SIGNATURE');
    await rejectsWith(verifyEnvelope(kp.publicKeys(), 'hybrid', 'invalidation', msg, b64(mixEd)), 'BAD_SIGNATURE');
  });

  it('refuse bad arguments loudly rather than sign something ambiguous', async () => {
    await expect(signEnvelope(kp, 'hybrid', '', msg)).rejects.toThrow(TypeError);
    await expect(signEnvelope(kp, 'hybrid', 'a\0b', msg)).rejects.toThrow(TypeError);
    await expect(signEnvelope(kp, 'rsa' as 'pq', 'x', msg)).rejects.toThrow(TypeError);
  });
});
