import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyPair, type RawKeys } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { SecureChannel } from '../../src/crypto/secure-channel.ts';
import { SigningPool } from '../../src/crypto/signing-pool.ts';
import { T0, flipBit, unb64 } from './helpers.ts';

/** The seeds inside a generated key pair's secret bytes (FORMATS.md: "Secret key bytes"). */
function seedsOf(kp: KeyPair): { mldsa: Uint8Array; ed25519: Uint8Array; mlkem: Uint8Array; x25519: Uint8Array } {
  const bytes = kp.toSecretBytes();
  return { mldsa: bytes.slice(22, 54), ed25519: bytes.slice(54, 86), mlkem: bytes.slice(86, 150), x25519: bytes.slice(150, 182) };
}

const request = (n = 1) => ({
  principalId: 'p',
  principalKind: 'agent' as const,
  action: 'fs.read_file',
  args: { n },
  evaluationId: `e${n}`,
  issuedAt: T0,
  expiresAt: T0 + 30_000,
});

/** Signs one permit with `kp` (on the calling thread, or on a worker pool) and verifies it against its public bundle. */
async function signsVerifiably(kp: KeyPair, pool: SigningPool | false): Promise<void> {
  for (const mode of ['hybrid', 'pq'] as const) {
    const signer = PermitSigner.fromKeyPair(kp, { mode, pool });
    const { token } = await signer.issue(request());
    await new PermitVerifier({ keys: kp.publicKeys(), mode, clock: () => T0 }).verify(token, { args: { n: 1 } });
    await signer.close();
  }
}

let noble: { mlDsa: { secretKey: Uint8Array; publicKey: Uint8Array }; edSeed: Uint8Array; edPublic: Uint8Array };
let dir: string;

beforeAll(async () => {
  const edSeed = new Uint8Array(randomBytes(32));
  noble = { mlDsa: ml_dsa65.keygen(), edSeed, edPublic: ed25519.getPublicKey(edSeed) };
  dir = await mkdtemp(join(tmpdir(), 'kavach-raw-keys-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('KeyPair.fromRawKeys', () => {
  it('round-trips the seeds of a generated key pair: same kid, same public bundle, same secret bytes', () => {
    const kp = KeyPair.generate({ now: T0, expiresInMs: 60_000 });
    const s = seedsOf(kp);
    const raw = KeyPair.fromRawKeys({
      mlDsaSecretKey: s.mldsa,
      ed25519SecretKey: s.ed25519,
      mlKemSeed: s.mlkem,
      x25519SecretKey: s.x25519,
      createdAt: T0,
      expiresAt: T0 + 60_000,
    });
    expect(raw.kid).toBe(kp.kid);
    expect(raw.publicKeys()).toEqual(kp.publicKeys());
    expect(raw.toSecretBytes()).toEqual(kp.toSecretBytes());
  });

  it("takes a generated key pair's signing keys with their public keys, and derives the same KEM keys every time", () => {
    const kp = KeyPair.generate({ now: T0 });
    const s = seedsOf(kp);
    const bundle = kp.publicKeys();
    const raw: RawKeys = {
      mlDsaSecretKey: s.mldsa,
      mlDsaPublicKey: unb64(bundle.mldsa65),
      ed25519SecretKey: s.ed25519,
      ed25519PublicKey: unb64(bundle.ed25519),
      createdAt: T0,
    };
    const a = KeyPair.fromRawKeys(raw);
    const b = KeyPair.fromRawKeys(raw);
    expect(a.publicKeys().mldsa65).toBe(bundle.mldsa65);
    expect(a.publicKeys().ed25519).toBe(bundle.ed25519);
    expect(a.publicKeys().mlkem768).not.toBe(bundle.mlkem768); // derived, not the generated pair's random ones
    expect(b.publicKeys()).toEqual(a.publicKeys());
  });

  it('takes noble-generated raw keys (expanded ML-DSA-65 secret key) and signs on the calling thread and on a worker pool', async () => {
    const kp = KeyPair.fromRawKeys({
      mlDsaSecretKey: noble.mlDsa.secretKey,
      mlDsaPublicKey: noble.mlDsa.publicKey,
      ed25519SecretKey: noble.edSeed,
      createdAt: T0,
    });
    expect(unb64(kp.publicKeys().mldsa65)).toEqual(noble.mlDsa.publicKey);
    expect(unb64(kp.publicKeys().ed25519)).toEqual(noble.edPublic);
    await signsVerifiably(kp, false);
    const pool = new SigningPool({ size: 1 }); // the worker rebuilds the key from toSecretBytes()
    await signsVerifiably(kp, pool);
    await pool.close();
  });

  it('gives the same kid for an ML-DSA key given as its seed or as its expanded secret key', () => {
    const seed = new Uint8Array(randomBytes(32));
    const expanded = ml_dsa65.keygen(seed);
    const fromSeed = KeyPair.fromRawKeys({ mlDsaSecretKey: seed, ed25519SecretKey: noble.edSeed, createdAt: T0 });
    const fromExpanded = KeyPair.fromRawKeys({
      mlDsaSecretKey: expanded.secretKey,
      mlDsaPublicKey: expanded.publicKey,
      ed25519SecretKey: noble.edSeed,
      createdAt: T0,
    });
    expect(fromExpanded.kid).toBe(fromSeed.kid);
    expect(fromExpanded.publicKeys()).toEqual(fromSeed.publicKeys());
  });

  it('takes the 64-byte (seed ‖ public key) Ed25519 form', () => {
    const a = KeyPair.fromRawKeys({
      mlDsaSecretKey: noble.mlDsa.secretKey,
      mlDsaPublicKey: noble.mlDsa.publicKey,
      ed25519SecretKey: noble.edSeed,
      createdAt: T0,
    });
    const b = KeyPair.fromRawKeys({
      mlDsaSecretKey: noble.mlDsa.secretKey,
      mlDsaPublicKey: noble.mlDsa.publicKey,
      ed25519SecretKey: new Uint8Array([...noble.edSeed, ...noble.edPublic]),
      createdAt: T0,
    });
    expect(b.kid).toBe(a.kid);
  });

  it('makes a fresh Ed25519 key (so a new kid) on each call without ed25519SecretKey', () => {
    const seed = new Uint8Array(randomBytes(32));
    expect(KeyPair.fromRawKeys({ mlDsaSecretKey: seed }).kid).not.toBe(KeyPair.fromRawKeys({ mlDsaSecretKey: seed }).kid);
  });

  it('keeps an expanded key through toSecretBytes / fromSecretBytes and save / load, and refuses a damaged one', async () => {
    const kp = KeyPair.fromRawKeys({
      mlDsaSecretKey: noble.mlDsa.secretKey,
      mlDsaPublicKey: noble.mlDsa.publicKey,
      ed25519SecretKey: noble.edSeed,
      createdAt: T0,
      expiresAt: T0 + 5,
    });
    const bytes = kp.toSecretBytes();
    expect(bytes.length).toBe(6142);
    expect(bytes[5]).toBe(0x01);
    const back = KeyPair.fromSecretBytes(bytes);
    expect(back.publicKeys()).toEqual(kp.publicKeys());
    expect(back.expiresAt).toBe(T0 + 5);
    const path = join(dir, 'raw.key');
    await kp.save(path, { passphrase: 'correct horse' });
    expect((await KeyPair.load(path, { passphrase: 'correct horse' })).kid).toBe(kp.kid);
    expect(() => KeyPair.fromSecretBytes(flipBit(bytes, 200))).toThrow(/checksum/);
    const wrongFlags = bytes.slice();
    wrongFlags[5] = 0;
    expect(() => KeyPair.fromSecretBytes(wrongFlags)).toThrow(/KEY_FILE_CORRUPT/);
  });

  it('gives a key pair the secure channel works with', () => {
    const alice = KeyPair.fromRawKeys({
      mlDsaSecretKey: noble.mlDsa.secretKey,
      mlDsaPublicKey: noble.mlDsa.publicKey,
      ed25519SecretKey: noble.edSeed,
    });
    const bob = KeyPair.generate();
    const sealed = new SecureChannel(alice, bob.publicKeys()).seal(new Uint8Array([1, 2, 3]), { contextId: 'ctx' });
    expect(new SecureChannel(bob, alice.publicKeys()).open(sealed, { expectedContextId: 'ctx' })).toEqual(new Uint8Array([1, 2, 3]));
  });

  describe('refuses with a TypeError naming the problem', () => {
    const base = (): RawKeys => ({
      mlDsaSecretKey: noble.mlDsa.secretKey,
      mlDsaPublicKey: noble.mlDsa.publicKey,
      ed25519SecretKey: noble.edSeed,
    });
    const cases: Array<[string, () => RawKeys, RegExp]> = [
      ['no ML-DSA key', () => ({ ...base(), mlDsaSecretKey: undefined as never }), /mlDsaSecretKey is required/],
      ['an expanded key without its public key', () => ({ ...base(), mlDsaPublicKey: undefined }), /mlDsaPublicKey is required/],
      [
        'an expanded key with another public key',
        () => ({ ...base(), mlDsaPublicKey: ml_dsa65.keygen().publicKey }),
        /does not belong to the public key/,
      ],
      [
        'a damaged expanded key (s1)',
        () => ({ ...base(), mlDsaSecretKey: flipBit(noble.mlDsa.secretKey, 200) }),
        /does not sign for the public key/,
      ],
      [
        'a seed with another public key',
        () => ({ ...base(), mlDsaSecretKey: new Uint8Array(32).fill(7) }),
        /mlDsaPublicKey is not the public key/,
      ],
      [
        'an Ed25519 seed ‖ public key with a wrong half',
        () => ({ ...base(), ed25519SecretKey: new Uint8Array([...noble.edSeed, ...new Uint8Array(32)]) }),
        /last 32 bytes/,
      ],
      [
        "an Ed25519 public key that is not the seed's",
        () => ({ ...base(), ed25519PublicKey: new Uint8Array(32) }),
        /ed25519PublicKey is not/,
      ],
      [
        'a key that is not a Uint8Array',
        () => ({ ...base(), ed25519SecretKey: Array.from(noble.edSeed) as never }),
        /ed25519SecretKey must be a Uint8Array of 32 or 64 bytes/,
      ],
      [
        'an ML-KEM seed of the wrong length',
        () => ({ ...base(), mlKemSeed: new Uint8Array(32) }),
        /mlKemSeed must be a Uint8Array of 64 bytes/,
      ],
      [
        'an X25519 key of the wrong length',
        () => ({ ...base(), x25519SecretKey: new Uint8Array(31) }),
        /x25519SecretKey must be a Uint8Array of 32 bytes/,
      ],
      ['expiresAt not after createdAt', () => ({ ...base(), createdAt: T0, expiresAt: T0 }), /expiresAt must be/],
      ['a negative createdAt', () => ({ ...base(), createdAt: -1 }), /createdAt must be/],
    ];
    for (const [what, raw, message] of cases) {
      it(what, () => {
        expect(() => KeyPair.fromRawKeys(raw())).toThrow(TypeError);
        expect(() => KeyPair.fromRawKeys(raw())).toThrow(message);
      });
    }

    it('every ML-DSA secret key length but 32 and 4032, every Ed25519 length but 32 and 64', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 5000 }).filter((n) => n !== 32 && n !== 4032),
          (n) => {
            expect(() => KeyPair.fromRawKeys({ mlDsaSecretKey: new Uint8Array(n) })).toThrow(
              /mlDsaSecretKey must be a Uint8Array of 32 or 4032 bytes/,
            );
          },
        ),
        { numRuns: 60 },
      );
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 200 }).filter((n) => n !== 32 && n !== 64),
          (n) => {
            expect(() => KeyPair.fromRawKeys({ mlDsaSecretKey: new Uint8Array(32), ed25519SecretKey: new Uint8Array(n) })).toThrow(
              /ed25519SecretKey must be/,
            );
          },
        ),
        { numRuns: 60 },
      );
    });
  });
});
