import { createHash } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { cryptoBackend, nativeMlDsa, nobleMlDsa } from '../../src/crypto/backend.ts';
import { KeyPair } from '../../src/crypto/keys.ts';

/** Secret bytes v1 built by hand from fixed seeds: pins the format and the derivation. */
function fixedSecret(): Uint8Array {
  const out = new Uint8Array(190);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode('KVSK'), 0);
  out[4] = 1;
  view.setBigUint64(6, 1_800_000_000_000n);
  view.setBigUint64(14, 0n);
  out.fill(0x01, 22, 54); // ML-DSA-65 seed
  out.fill(0x02, 54, 86); // Ed25519 seed
  out.fill(0x03, 86, 150); // ML-KEM-768 seed (d || z)
  out.fill(0x04, 150, 182); // X25519 secret
  out.set(createHash('sha256').update(out.subarray(0, 182)).digest().subarray(0, 8), 182);
  return out;
}

describe('crypto backend', () => {
  it('uses node:crypto for ML-DSA exactly when this Node passes the native probe', () => {
    expect(cryptoBackend()).toEqual({ mlDsa: nativeMlDsa() ? 'native' : 'noble', ed25519: 'native', kem: 'noble' });
  });

  it('derives pinned keys from fixed seeds (same seed, same keys, on every backend and release)', () => {
    const kp = KeyPair.fromSecretBytes(fixedSecret());
    const b = kp.publicKeys();
    expect(kp.kid).toBe('HrTakJDrNs8_c8HKIOK6ug');
    expect(createHash('sha256').update(Buffer.from(b.mldsa65, 'base64url')).digest('hex')).toBe(
      createHash('sha256')
        .update(nobleMlDsa.fromSeed(new Uint8Array(32).fill(1)).publicKey)
        .digest('hex'),
    );
    // node:crypto's Ed25519 agrees with noble's on the same seed.
    expect(b.ed25519).toBe(Buffer.from(ed25519.getPublicKey(new Uint8Array(32).fill(2))).toString('base64url'));
    expect(b.x25519).toBe(Buffer.from(x25519.getPublicKey(new Uint8Array(32).fill(4))).toString('base64url'));
  });

  it('honours the FIPS 204 context string (noble)', () => {
    const key = nobleMlDsa.fromSeed(new Uint8Array(32).fill(9));
    const msg = new TextEncoder().encode('m');
    const sig = key.sign(msg, new TextEncoder().encode('kavach/permit'));
    expect(nobleMlDsa.verify(key.publicKey, msg, sig, new TextEncoder().encode('kavach/permit'))).toBe(true);
    expect(nobleMlDsa.verify(key.publicKey, msg, sig, new TextEncoder().encode('kavach/audit'))).toBe(false);
    expect(nobleMlDsa.verify(key.publicKey, msg, sig, new Uint8Array(0))).toBe(false);
  });

  it('verifies signatures across backends when node:crypto has ML-DSA (else there is nothing to cross)', () => {
    const native = nativeMlDsa();
    const seed = new Uint8Array(32).fill(5);
    const ctx = new TextEncoder().encode('kavach/permit');
    const msg = new TextEncoder().encode('cross');
    const noble = nobleMlDsa.fromSeed(seed);
    if (!native) {
      expect(cryptoBackend().mlDsa).toBe('noble');
      return;
    }
    const n = native.fromSeed(seed);
    expect(Buffer.from(n.publicKey).equals(Buffer.from(noble.publicKey))).toBe(true);
    expect(nobleMlDsa.verify(noble.publicKey, msg, n.sign(msg, ctx), ctx)).toBe(true);
    expect(native.verify(n.publicKey, msg, noble.sign(msg, ctx), ctx)).toBe(true);
  });
});
