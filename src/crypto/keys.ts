/**
 * A Kavach key pair: ML-DSA-65 and Ed25519 for signatures, ML-KEM-768 and X25519 for the secure
 * channel. Only seeds are stored; every key is derived from them, so a key pair is the same on
 * every backend. The key id is a hash of the four public keys: same keys, same id.
 */
import { createHash, randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { z } from 'zod';
import {
  ED25519_PUBLIC, MLDSA65_PUBLIC, ed25519FromSeed, mlDsa, type Ed25519SigningKey, type MlDsaSigningKey,
} from './backend.ts';
import { equalBytes, fromBase64Url, readU64, toBase64Url, utf8, writeU64 } from './encoding.ts';
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
  mldsa: Uint8Array; // 32
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
//   "KVSK" | 0x01 | 0x00 | created u64 | expires u64 (0 = never) | mldsa 32 | ed25519 32 | mlkem 64 |
//   x25519 32 | SHA-256(all before)[0..8]
const SECRET_MAGIC = utf8('KVSK');
const SECRET_VERSION = 1;
const SECRET_LENGTH = 4 + 1 + 1 + 8 + 8 + 32 + 32 + 64 + 32 + 8;

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
    this.#mldsa = mlDsa().fromSeed(seeds.mldsa);
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
    const out = new Uint8Array(SECRET_LENGTH);
    const view = new DataView(out.buffer);
    out.set(SECRET_MAGIC, 0);
    out[4] = SECRET_VERSION;
    out[5] = 0;
    writeU64(view, 6, this.createdAt);
    writeU64(view, 14, this.expiresAt ?? 0);
    out.set(this.#seeds.mldsa, 22);
    out.set(this.#seeds.ed25519, 54);
    out.set(this.#seeds.mlkem, 86);
    out.set(this.#seeds.x25519, 150);
    out.set(checksum(out.subarray(0, 182)), 182);
    return out;
  }

  static fromSecretBytes(bytes: Uint8Array): KeyPair {
    const corrupt = (why: string) => new KeyFileError('KEY_FILE_CORRUPT', `secret key bytes are invalid: ${why}`);
    if (!(bytes instanceof Uint8Array) || bytes.length !== SECRET_LENGTH) throw corrupt(`expected ${SECRET_LENGTH} bytes`);
    if (!equalBytes(bytes.subarray(0, 4), SECRET_MAGIC)) throw corrupt('not a Kavach secret key');
    if (bytes[4] !== SECRET_VERSION) throw corrupt(`unsupported version ${bytes[4]}`);
    if (bytes[5] !== 0) throw corrupt('unknown flags');
    if (!equalBytes(checksum(bytes.subarray(0, 182)), bytes.subarray(182))) throw corrupt('checksum mismatch');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const created = readU64(view, 6);
    const expires = readU64(view, 14);
    if (created === undefined || expires === undefined) throw corrupt('time out of range');
    const copy = (from: number, len: number) => bytes.slice(from, from + len);
    const seeds: Seeds = { mldsa: copy(22, 32), ed25519: copy(54, 32), mlkem: copy(86, 64), x25519: copy(150, 32) };
    return new KeyPair(seeds, created, expires === 0 ? undefined : expires);
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
  return a.kid === b.kid && a.created === b.created && a.expires === b.expires && a.v === b.v &&
    a.mldsa65 === b.mldsa65 && a.ed25519 === b.ed25519 && a.mlkem768 === b.mlkem768 && a.x25519 === b.x25519 &&
    Object.keys(b).length === Object.keys(a).length;
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
  if (!parsed.success) throw new TypeError(`invalid public key bundle: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
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
  if (computeKid(mldsa65, ed25519, mlkem768, x25519Pub) !== b.kid) throw new TypeError(`invalid public key bundle: kid ${b.kid} does not match its keys`);
  if (b.expires !== undefined && b.expires <= b.created) throw new TypeError('invalid public key bundle: expires must be after created');
  const bundle: PublicKeyBundle = { ...b };
  if (bundle.expires === undefined) delete bundle.expires;
  const out: ResolvedBundle = { bundle, mldsa65, ed25519, mlkem768, x25519: x25519Pub };
  if (typeof value === 'object' && value !== null) resolved.set(value, out);
  return out;
}

