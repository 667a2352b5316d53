/**
 * A Kavach key pair: ML-DSA-65 and Ed25519 for signatures, ML-KEM-768 and X25519 for the secure
 * channel. Only seeds are stored; every key is derived from them, so a key pair is the same on
 * every backend (one exception: an ML-DSA-65 key imported by fromRawKeys as an expanded secret
 * key, without its seed, is kept as that key and its public key). The key id is a hash of the
 * four public keys: same keys, same id.
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { z } from 'zod';
import {
  ED25519_PUBLIC,
  MLDSA65_PUBLIC,
  MLDSA65_SECRET,
  MLDSA65_SEED,
  ed25519FromSeed,
  mlDsa,
  mlDsaFromExpanded,
  type Ed25519SigningKey,
  type MlDsaSigningKey,
} from './backend.ts';
import { concatBytes, equalBytes, fromBase64Url, readU64, toBase64Url, utf8, writeU64 } from './encoding.ts';
import { KeyFileError } from './errors.ts';
import { readKeyFile, writeKeyFile, type KeyFileOptions } from './key-file.ts';

export const MLKEM768_PUBLIC = 1184;
export const X25519_PUBLIC = 32;
const KID_BYTES = 16;

/** The public half of a key pair, JSON-safe: bytes are base64url, times are ms since epoch. */
export interface PublicKeyBundle {
  v: 1;
  kid: string;
  created: number;
  expires?: number;
  mldsa65: string;
  ed25519: string;
  mlkem768: string;
  x25519: string;
}

interface Seeds {
  mldsa: Uint8Array; // 32: the seed ξ; or 4032: an expanded secret key imported without its seed
  mldsaPublic?: Uint8Array; // 1952, with an expanded key only (it does not give its public key cheaply)
  ed25519: Uint8Array; // 32
  mlkem: Uint8Array; // 64 (d || z)
  x25519: Uint8Array; // 32
}

/** Key id: the first 16 bytes of SHA-256 over a tag and the four public keys (all fixed length). */
export function computeKid(mldsa65: Uint8Array, ed25519: Uint8Array, mlkem768: Uint8Array, x25519Pub: Uint8Array): string {
  const h = createHash('sha256').update(utf8('kavach/kid/v1\0')).update(mldsa65).update(ed25519).update(mlkem768).update(x25519Pub);
  return toBase64Url(h.digest().subarray(0, KID_BYTES));
}

export function kidToBytes(kid: string): Uint8Array | undefined {
  const b = fromBase64Url(kid);
  return b && b.length === KID_BYTES ? b : undefined;
}

export const KID_LENGTH = KID_BYTES;

// ---------------------------------------------------------------------------------------------
// Secret bytes, v1:
//   "KVSK" | 0x01 | flags | created u64 | expires u64 (0 = never) | mldsa | ed25519 32 | mlkem 64 |
//   x25519 32 | SHA-256(all before)[0..8]
// flags 0x00: mldsa = the 32-byte seed (190 bytes in all). flags 0x01 (fromRawKeys without the
// seed): mldsa = expanded secret key 4032 | public key 1952 (6142 bytes in all).
const SECRET_MAGIC = utf8('KVSK');
const SECRET_VERSION = 1;
const FLAG_EXPANDED_MLDSA = 0x01;
const SECRET_FIXED = 4 + 1 + 1 + 8 + 8 + 32 + 64 + 32 + 8;
const SECRET_LENGTH = SECRET_FIXED + MLDSA65_SEED;
const SECRET_LENGTH_EXPANDED = SECRET_FIXED + MLDSA65_SECRET + MLDSA65_PUBLIC;
const ED25519_SECRET_WITH_PUBLIC = 64;
const MLKEM768_SEED = 64;
const X25519_SECRET = 32;

/**
 * Raw key bytes for KeyPair.fromRawKeys (e.g. from a KMS, a secrets manager or another ML-DSA
 * implementation). Byte arrays are copied; the caller may wipe its own.
 */
export interface RawKeys {
  /** ML-DSA-65: the 32-byte seed ξ (FIPS 204 KeyGen input; preferred), or the 4032-byte expanded secret key. */
  mlDsaSecretKey: Uint8Array;
  /** ML-DSA-65 public key (1952 bytes). Required with an expanded secret key; with a seed, checked against the derived one. */
  mlDsaPublicKey?: Uint8Array;
  /** Ed25519: the 32-byte RFC 8032 private key (seed), or 64 bytes seed ‖ public key (NaCl/libsodium). Absent: a fresh random key (the kid then differs on every call). */
  ed25519SecretKey?: Uint8Array;
  /** Ed25519 public key (32 bytes), checked against the derived one. */
  ed25519PublicKey?: Uint8Array;
  /** ML-KEM-768 seed d ‖ z (64 bytes). Absent: derived from the signing secrets (see fromRawKeys). */
  mlKemSeed?: Uint8Array;
  /** X25519 secret key (32 bytes). Absent: derived from the signing secrets (see fromRawKeys). */
  x25519SecretKey?: Uint8Array;
  /** ms since epoch (default: now). Give the same value on every start to reproduce the same public bundle. */
  createdAt?: number;
  /** ms since epoch; after createdAt. Absent: never expires. */
  expiresAt?: number;
}

/** What the secret-key operations below need; assigned by KeyPair's static block, the only code that reads its private fields. */
let secretsOf: (kp: KeyPair) => { mldsa: MlDsaSigningKey; ed25519: Ed25519SigningKey; mlkem768: Uint8Array; x25519: Uint8Array };

export class KeyPair {
  readonly kid: string;
  /** ms since epoch. */
  readonly createdAt: number;
  /** ms since epoch; undefined = never expires. */
  readonly expiresAt: number | undefined;
  readonly #seeds: Seeds;
  readonly #mldsa: MlDsaSigningKey;
  readonly #ed25519: Ed25519SigningKey;
  readonly #kemSecret: Uint8Array;
  readonly #kemPublic: Uint8Array;
  readonly #x25519Public: Uint8Array;

  private constructor(seeds: Seeds, createdAt: number, expiresAt: number | undefined) {
    this.#seeds = seeds;
    this.createdAt = createdAt;
    this.expiresAt = expiresAt;
    this.#mldsa = seeds.mldsaPublic ? mlDsaFromExpanded(seeds.mldsa, seeds.mldsaPublic) : mlDsa().fromSeed(seeds.mldsa);
    this.#ed25519 = ed25519FromSeed(seeds.ed25519);
    const kem = ml_kem768.keygen(seeds.mlkem);
    this.#kemSecret = kem.secretKey;
    this.#kemPublic = kem.publicKey;
    this.#x25519Public = x25519.getPublicKey(seeds.x25519);
    this.kid = computeKid(this.#mldsa.publicKey, this.#ed25519.publicKey, this.#kemPublic, this.#x25519Public);
  }

  /** Fresh random seeds. `now` is for tests with an injected clock. */
  static generate(opts: { expiresInMs?: number; now?: number } = {}): KeyPair {
    const now = opts.now ?? Date.now();
    if (!Number.isSafeInteger(now) || now < 0) throw new TypeError('now must be a non-negative integer (ms)');
    let expiresAt: number | undefined;
    if (opts.expiresInMs !== undefined) {
      if (!Number.isSafeInteger(opts.expiresInMs) || opts.expiresInMs <= 0) throw new TypeError('expiresInMs must be a positive integer');
      expiresAt = now + opts.expiresInMs;
    }
    const seeds: Seeds = {
      mldsa: new Uint8Array(randomBytes(32)),
      ed25519: new Uint8Array(randomBytes(32)),
      mlkem: new Uint8Array(randomBytes(64)),
      x25519: new Uint8Array(randomBytes(32)),
    };
    return new KeyPair(seeds, now, expiresAt);
  }

  /** True when the key has an expiry and `now` is at or past it. */
  isExpired(now: number): boolean {
    return this.expiresAt !== undefined && now >= this.expiresAt;
  }

  publicKeys(): PublicKeyBundle {
    const bundle: PublicKeyBundle = {
      v: 1,
      kid: this.kid,
      created: this.createdAt,
      mldsa65: toBase64Url(this.#mldsa.publicKey),
      ed25519: toBase64Url(this.#ed25519.publicKey),
      mlkem768: toBase64Url(this.#kemPublic),
      x25519: toBase64Url(this.#x25519Public),
    };
    if (this.expiresAt !== undefined) bundle.expires = this.expiresAt;
    return bundle;
  }

  /** The versioned binary secret (seeds + times + checksum). Handle like the key itself. */
  toSecretBytes(): Uint8Array {
    const mldsa = this.#seeds.mldsaPublic ? concatBytes(this.#seeds.mldsa, this.#seeds.mldsaPublic) : this.#seeds.mldsa;
    const out = new Uint8Array(SECRET_FIXED + mldsa.length);
    const view = new DataView(out.buffer);
    out.set(SECRET_MAGIC, 0);
    out[4] = SECRET_VERSION;
    out[5] = this.#seeds.mldsaPublic ? FLAG_EXPANDED_MLDSA : 0;
    writeU64(view, 6, this.createdAt);
    writeU64(view, 14, this.expiresAt ?? 0);
    let at = 22;
    for (const part of [mldsa, this.#seeds.ed25519, this.#seeds.mlkem, this.#seeds.x25519]) {
      out.set(part, at);
      at += part.length;
    }
    out.set(checksum(out.subarray(0, at)), at);
    if (mldsa !== this.#seeds.mldsa) mldsa.fill(0);
    return out;
  }

  static fromSecretBytes(bytes: Uint8Array): KeyPair {
    const corrupt = (why: string) => new KeyFileError('KEY_FILE_CORRUPT', `secret key bytes are invalid: ${why}`);
    if (!(bytes instanceof Uint8Array) || (bytes.length !== SECRET_LENGTH && bytes.length !== SECRET_LENGTH_EXPANDED)) {
      throw corrupt(`expected ${SECRET_LENGTH} bytes (or ${SECRET_LENGTH_EXPANDED} for an expanded ML-DSA key)`);
    }
    if (!equalBytes(bytes.subarray(0, 4), SECRET_MAGIC)) throw corrupt('not a Kavach secret key');
    if (bytes[4] !== SECRET_VERSION) throw corrupt(`unsupported version ${bytes[4]}`);
    if (bytes[5] !== 0 && bytes[5] !== FLAG_EXPANDED_MLDSA) throw corrupt('unknown flags');
    const expanded = bytes[5] === FLAG_EXPANDED_MLDSA;
    if (bytes.length !== (expanded ? SECRET_LENGTH_EXPANDED : SECRET_LENGTH)) throw corrupt('length does not match the flags');
    const end = bytes.length - 8;
    if (!equalBytes(checksum(bytes.subarray(0, end)), bytes.subarray(end))) throw corrupt('checksum mismatch');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const created = readU64(view, 6);
    const expires = readU64(view, 14);
    if (created === undefined || expires === undefined) throw corrupt('time out of range');
    let at = 22;
    const take = (len: number) => bytes.slice(at, (at += len));
    const seeds: Seeds = expanded
      ? { mldsa: take(MLDSA65_SECRET), mldsaPublic: take(MLDSA65_PUBLIC), ed25519: take(32), mlkem: take(64), x25519: take(32) }
      : { mldsa: take(MLDSA65_SEED), ed25519: take(32), mlkem: take(64), x25519: take(32) };
    try {
      return new KeyPair(seeds, created, expires === 0 ? undefined : expires);
    } catch (err) {
      throw corrupt((err as Error).message); // an expanded key that fails its probe
    }
  }

  /**
   * A key pair from raw key bytes (see RawKeys); throws TypeError naming the bad field. A key pair
   * also needs ML-KEM-768 and X25519 keys (the secure channel, and the kid hashes all four public
   * keys): pass them, or they are derived, by HKDF-SHA256, from the ML-DSA-65 expanded secret key
   * and the Ed25519 seed, so the same signing keys always give the same key pair and kid without
   * storing more secrets (and a KEM key is no easier to recover than both signing keys). Without
   * `ed25519SecretKey` the Ed25519 key is fresh, so the KEM keys and the kid are new on each call.
   */
  static fromRawKeys(raw: RawKeys): KeyPair {
    if (typeof raw !== 'object' || raw === null) throw new TypeError('fromRawKeys needs an object of raw keys');
    const bytes = (name: keyof RawKeys, lengths: number[]): Uint8Array | undefined => {
      const value = raw[name];
      if (value === undefined) return undefined;
      if (!(value instanceof Uint8Array) || !lengths.includes(value.length))
        throw new TypeError(`${name} must be a Uint8Array of ${lengths.join(' or ')} bytes`);
      return value.slice();
    };
    const mldsaSecret = bytes('mlDsaSecretKey', [MLDSA65_SEED, MLDSA65_SECRET]);
    if (!mldsaSecret) throw new TypeError('mlDsaSecretKey is required');
    const mldsaPublic = bytes('mlDsaPublicKey', [MLDSA65_PUBLIC]);
    const edSecret = bytes('ed25519SecretKey', [32, ED25519_SECRET_WITH_PUBLIC]);
    const edPublic = bytes('ed25519PublicKey', [ED25519_PUBLIC]);
    const mlkemSeed = bytes('mlKemSeed', [MLKEM768_SEED]);
    const x25519Secret = bytes('x25519SecretKey', [X25519_SECRET]);
    const createdAt = raw.createdAt ?? Date.now();
    if (!Number.isSafeInteger(createdAt) || createdAt < 0) throw new TypeError('createdAt must be a non-negative integer (ms)');
    if (raw.expiresAt !== undefined && (!Number.isSafeInteger(raw.expiresAt) || raw.expiresAt <= createdAt)) {
      throw new TypeError('expiresAt must be an integer (ms) after createdAt');
    }

    // ML-DSA-65: keep the seed when given; an expanded key is kept with its (required) public key.
    let expandedForKdf: Uint8Array;
    const seeds: Partial<Seeds> = {};
    if (mldsaSecret.length === MLDSA65_SEED) {
      const derived = ml_dsa65.keygen(mldsaSecret);
      if (mldsaPublic && !equalBytes(mldsaPublic, derived.publicKey))
        throw new TypeError('mlDsaPublicKey is not the public key of mlDsaSecretKey');
      seeds.mldsa = mldsaSecret;
      expandedForKdf = derived.secretKey;
    } else {
      if (!mldsaPublic) throw new TypeError('mlDsaPublicKey is required with an expanded (4032-byte) mlDsaSecretKey');
      seeds.mldsa = mldsaSecret;
      seeds.mldsaPublic = mldsaPublic; // the constructor checks that the two belong together
      expandedForKdf = mldsaSecret;
    }

    const edSeed = edSecret ? edSecret.slice(0, 32) : new Uint8Array(randomBytes(32));
    const edDerived = ed25519FromSeed(edSeed).publicKey;
    if (edSecret && edSecret.length === ED25519_SECRET_WITH_PUBLIC && !equalBytes(edSecret.subarray(32), edDerived)) {
      throw new TypeError('ed25519SecretKey: its last 32 bytes are not the public key of its seed');
    }
    if (edPublic && !equalBytes(edPublic, edDerived)) throw new TypeError('ed25519PublicKey is not the public key of ed25519SecretKey');
    seeds.ed25519 = edSeed;

    if (!mlkemSeed || !x25519Secret) {
      const ikm = concatBytes(expandedForKdf, edSeed);
      const okm = new Uint8Array(
        hkdfSync('sha256', ikm, utf8('kavach/raw-keys/v1'), utf8('kavach/kem-seeds/v1'), MLKEM768_SEED + X25519_SECRET),
      );
      ikm.fill(0);
      seeds.mlkem = mlkemSeed ?? okm.slice(0, MLKEM768_SEED);
      seeds.x25519 = x25519Secret ?? okm.slice(MLKEM768_SEED);
      okm.fill(0);
    } else {
      seeds.mlkem = mlkemSeed;
      seeds.x25519 = x25519Secret;
    }
    if (expandedForKdf !== mldsaSecret) expandedForKdf.fill(0);
    return new KeyPair(seeds as Seeds, createdAt, raw.expiresAt);
  }

  /** Writes the secret to `path` with mode 0600, encrypted (scrypt + XChaCha20-Poly1305) when a passphrase is given. */
  async save(path: string, opts: KeyFileOptions = {}): Promise<void> {
    const secret = this.toSecretBytes();
    try {
      await writeKeyFile(path, secret, opts);
    } finally {
      secret.fill(0); // a copy of the seeds: do not leave it for the GC to find
    }
  }

  /** Reads a key file written by `save`. Wrong passphrase, corrupt file or loose permissions → KeyFileError. */
  static async load(path: string, opts: KeyFileOptions = {}): Promise<KeyPair> {
    const secret = await readKeyFile(path, opts);
    try {
      return KeyPair.fromSecretBytes(secret);
    } finally {
      secret.fill(0); // fromSecretBytes copied the seeds it keeps
    }
  }

  static {
    // The one way into the secrets from outside the class, and it stays in this module.
    secretsOf = (kp) => ({ mldsa: kp.#mldsa, ed25519: kp.#ed25519, mlkem768: kp.#kemSecret, x25519: kp.#seeds.x25519 });
  }
}

// ---------------------------------------------------------------------------------------------
// Secret-key operations. The secret keys never leave this module: KeyPair has no property or
// method that returns one (nothing in its type declarations leads to a secret), and the modules
// that need them (signatures.ts, secure-channel.ts) get the operation, not the key. Not exported
// from the package.

/** ML-DSA-65 signature by `kp` over `data`, with a FIPS 204 context string. */
export function mlDsaSign(kp: KeyPair, data: Uint8Array, context: Uint8Array): Uint8Array {
  return secretsOf(kp).mldsa.sign(data, context);
}

/** Ed25519 signature by `kp` over `data`. */
export function ed25519Sign(kp: KeyPair, data: Uint8Array): Uint8Array {
  return secretsOf(kp).ed25519.sign(data);
}

/** ML-KEM-768 shared secret of a ciphertext sent to `kp`. The caller wipes it. */
export function mlKemDecapsulate(kp: KeyPair, ciphertext: Uint8Array): Uint8Array {
  return ml_kem768.decapsulate(ciphertext, secretsOf(kp).mlkem768);
}

/** X25519 shared secret between `kp` and a peer's public key. The caller wipes it. */
export function x25519SharedSecret(kp: KeyPair, peerPublic: Uint8Array): Uint8Array {
  return x25519.getSharedSecret(secretsOf(kp).x25519, peerPublic);
}

function checksum(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest().subarray(0, 8));
}

// ---------------------------------------------------------------------------------------------
// Bundle validation

const b64 = z.string().regex(/^[A-Za-z0-9_-]+$/);
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const publicKeyBundleSchema = z.strictObject({
  v: z.literal(1),
  kid: b64,
  created: time,
  expires: time.optional(),
  mldsa65: b64,
  ed25519: b64,
  mlkem768: b64,
  x25519: b64,
});

/** A bundle whose bytes were decoded and whose kid was recomputed. */
export interface ResolvedBundle {
  bundle: PublicKeyBundle;
  mldsa65: Uint8Array;
  ed25519: Uint8Array;
  mlkem768: Uint8Array;
  x25519: Uint8Array;
}

const resolved = new WeakMap<object, ResolvedBundle>();

function sameBundle(a: PublicKeyBundle, b: PublicKeyBundle): boolean {
  return (
    a.kid === b.kid &&
    a.created === b.created &&
    a.expires === b.expires &&
    a.v === b.v &&
    a.mldsa65 === b.mldsa65 &&
    a.ed25519 === b.ed25519 &&
    a.mlkem768 === b.mlkem768 &&
    a.x25519 === b.x25519 &&
    Object.keys(b).length === Object.keys(a).length
  );
}

/**
 * Checks a bundle (shape, key lengths, kid = hash of its keys) and decodes it; the result is
 * cached per object. Throws TypeError with the reason.
 */
export function resolveBundle(value: unknown): ResolvedBundle {
  if (typeof value === 'object' && value !== null) {
    const hit = resolved.get(value);
    // Bundles are plain objects a caller could mutate after the first look: reuse only when unchanged.
    if (hit && sameBundle(hit.bundle, value as PublicKeyBundle)) return hit;
  }
  const parsed = publicKeyBundleSchema.safeParse(value);
  if (!parsed.success)
    throw new TypeError(
      `invalid public key bundle: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  const b = parsed.data;
  const decode = (field: 'mldsa65' | 'ed25519' | 'mlkem768' | 'x25519', length: number): Uint8Array => {
    const bytes = fromBase64Url(b[field]);
    if (!bytes || bytes.length !== length) throw new TypeError(`invalid public key bundle: ${field} must be ${length} bytes of base64url`);
    return bytes;
  };
  const mldsa65 = decode('mldsa65', MLDSA65_PUBLIC);
  const ed25519 = decode('ed25519', ED25519_PUBLIC);
  const mlkem768 = decode('mlkem768', MLKEM768_PUBLIC);
  const x25519Pub = decode('x25519', X25519_PUBLIC);
  if (computeKid(mldsa65, ed25519, mlkem768, x25519Pub) !== b.kid)
    throw new TypeError(`invalid public key bundle: kid ${b.kid} does not match its keys`);
  if (b.expires !== undefined && b.expires <= b.created) throw new TypeError('invalid public key bundle: expires must be after created');
  const bundle: PublicKeyBundle = { ...b };
  if (bundle.expires === undefined) delete bundle.expires;
  const out: ResolvedBundle = { bundle, mldsa65, ed25519, mlkem768, x25519: x25519Pub };
  if (typeof value === 'object' && value !== null) resolved.set(value, out);
  return out;
}
