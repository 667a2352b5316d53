/**
 * The primitives behind every signature: Ed25519 through node:crypto (always there on Node ≥ 20),
 * ML-DSA-65 through node:crypto when the running Node has it (24.6+ with OpenSSL 3.5), else
 * @noble/post-quantum. Detection is a run-time probe, never a version check, and the native
 * path must prove it derives the same keys from a seed and honours the FIPS 204 context string
 * before it is used. `KAVACH_CRYPTO_BACKEND=noble` forces the pure-JS path.
 */
import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { equalBytes, utf8 } from './encoding.ts';

export const MLDSA65_SEED = 32;
export const MLDSA65_PUBLIC = 1952;
export const MLDSA65_SIGNATURE = 3309;
/** The expanded secret key (FIPS 204 skEncode: ρ ‖ K ‖ tr ‖ s1 ‖ s2 ‖ t0). */
export const MLDSA65_SECRET = 4032;
export const ED25519_PUBLIC = 32;
export const ED25519_SIGNATURE = 64;

export type BackendName = 'native' | 'noble';

/** A signing key bound to one backend. */
export interface MlDsaSigningKey {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array, context: Uint8Array): Uint8Array;
}

export interface MlDsaBackend {
  readonly name: BackendName;
  /** Deterministic: the same 32-byte seed gives the same key pair on every backend (FIPS 204 ξ). */
  fromSeed(seed: Uint8Array): MlDsaSigningKey;
  /** Never throws: malformed inputs verify false. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, context: Uint8Array): boolean;
}

// ---------------------------------------------------------------------------------------------
// noble

export const nobleMlDsa: MlDsaBackend = {
  name: 'noble',
  fromSeed(seed) {
    const { publicKey, secretKey } = ml_dsa65.keygen(seed);
    return {
      publicKey,
      sign: (message, context) => ml_dsa65.sign(message, secretKey, { context }),
    };
  },
  verify(publicKey, message, signature, context) {
    if (publicKey.length !== MLDSA65_PUBLIC || signature.length !== MLDSA65_SIGNATURE) return false;
    try {
      return ml_dsa65.verify(signature, message, publicKey, { context });
    } catch {
      return false;
    }
  },
};

/**
 * A signing key from an expanded ML-DSA-65 secret key, for raw keys whose 32-byte seed is not
 * known (KeyPair.fromRawKeys). Always noble: node:crypto imports ML-DSA keys by seed only here.
 * Checks that the secret key belongs to `publicKey` (ρ and tr = SHAKE256(pk) inside it, and a
 * probe signature that verifies under it); throws TypeError with the reason otherwise.
 */
export function mlDsaFromExpanded(secretKey: Uint8Array, publicKey: Uint8Array): MlDsaSigningKey {
  if (secretKey.length !== MLDSA65_SECRET) throw new TypeError(`an expanded ML-DSA-65 secret key is ${MLDSA65_SECRET} bytes`);
  if (publicKey.length !== MLDSA65_PUBLIC) throw new TypeError(`an ML-DSA-65 public key is ${MLDSA65_PUBLIC} bytes`);
  const tr = new Uint8Array(createHash('shake256', { outputLength: 64 }).update(publicKey).digest());
  if (!equalBytes(secretKey.subarray(0, 32), publicKey.subarray(0, 32)) || !equalBytes(secretKey.subarray(64, 128), tr)) {
    throw new TypeError('the ML-DSA-65 secret key does not belong to the public key given with it');
  }
  const probe = utf8('kavach raw key probe');
  const context = utf8('kavach/raw-key-probe');
  let ok: boolean;
  try {
    ok = mlDsa().verify(publicKey, probe, ml_dsa65.sign(probe, secretKey, { context }), context);
  } catch {
    ok = false;
  }
  if (!ok) throw new TypeError('the ML-DSA-65 secret key does not sign for the public key given with it');
  return {
    publicKey,
    sign: (message, ctx) => ml_dsa65.sign(message, secretKey, { context: ctx }),
  };
}

// ---------------------------------------------------------------------------------------------
// node:crypto

// PKCS#8 PrivateKeyInfo holding only the seed ([0] IMPLICIT OCTET STRING, draft-ietf-lamps-dilithium-certificates).
const MLDSA65_PKCS8_SEED_PREFIX = Buffer.from('3034020100300b0609608648016503040312042280' + '20', 'hex');
const MLDSA65_SPKI_PREFIX = Buffer.from('308207b2300b0609608648016503040312038207a100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function rawPublic(key: KeyObject, prefix: Buffer): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  if (!der.subarray(0, prefix.length).equals(prefix)) throw new Error('unexpected SPKI encoding');
  return new Uint8Array(der.subarray(prefix.length));
}

/** Bounded cache of parsed public keys: parsing DER on every verify costs more than verifying. */
class KeyObjectCache {
  private readonly map = new Map<string, KeyObject>();
  constructor(
    private readonly prefix: Buffer,
    private readonly max = 512,
  ) {}
  get(raw: Uint8Array): KeyObject {
    const id = Buffer.from(raw).toString('base64');
    let key = this.map.get(id);
    if (!key) {
      key = createPublicKey({ key: Buffer.concat([this.prefix, raw]), format: 'der', type: 'spki' });
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string);
      this.map.set(id, key);
    }
    return key;
  }
}

const mlDsaPublicCache = new KeyObjectCache(MLDSA65_SPKI_PREFIX);

const nativeMlDsaImpl: MlDsaBackend = {
  name: 'native',
  fromSeed(seed) {
    if (seed.length !== MLDSA65_SEED) throw new Error('ML-DSA-65 seed must be 32 bytes');
    const key = createPrivateKey({ key: Buffer.concat([MLDSA65_PKCS8_SEED_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    const publicKey = rawPublic(createPublicKey(key), MLDSA65_SPKI_PREFIX);
    return {
      publicKey,
      // `context` is the FIPS 204 ctx string (Node ≥ 24.x sign/verify option for ML-DSA).
      sign: (message, context) => new Uint8Array(nodeSign(null, message, { key, context } as never)),
    };
  },
  verify(publicKey, message, signature, context) {
    if (publicKey.length !== MLDSA65_PUBLIC || signature.length !== MLDSA65_SIGNATURE) return false;
    try {
      return nodeVerify(null, message, { key: mlDsaPublicCache.get(publicKey), context } as never, signature);
    } catch {
      return false;
    }
  },
};

let nativeProbe: MlDsaBackend | null | undefined;

/**
 * The native ML-DSA-65 backend, or undefined when this Node lacks it or it fails the probe:
 * same public key as noble from a fixed seed, a signature that verifies under its context and
 * not under another, and one that noble accepts.
 */
export function nativeMlDsa(): MlDsaBackend | undefined {
  if (nativeProbe === undefined) nativeProbe = probeNative();
  return nativeProbe ?? undefined;
}

function probeNative(): MlDsaBackend | null {
  try {
    const seed = new Uint8Array(MLDSA65_SEED).fill(0x4b);
    const native = nativeMlDsaImpl.fromSeed(seed);
    const noble = ml_dsa65.keygen(seed);
    if (!equalBytes(native.publicKey, noble.publicKey)) return null;
    const message = utf8('kavach backend probe');
    const ctxA = utf8('kavach/probe-a');
    const sig = native.sign(message, ctxA);
    if (!nativeMlDsaImpl.verify(native.publicKey, message, sig, ctxA)) return null;
    if (nativeMlDsaImpl.verify(native.publicKey, message, sig, utf8('kavach/probe-b'))) return null;
    if (!nobleMlDsa.verify(noble.publicKey, message, sig, ctxA)) return null;
    return nativeMlDsaImpl;
  } catch {
    return null;
  }
}

let chosen: MlDsaBackend | undefined;

/** The ML-DSA-65 backend in use: native when it passes the probe, else noble. */
export function mlDsa(): MlDsaBackend {
  if (!chosen) {
    const forced = process.env.KAVACH_CRYPTO_BACKEND;
    chosen = forced === 'noble' ? nobleMlDsa : (nativeMlDsa() ?? nobleMlDsa);
  }
  return chosen;
}

export interface CryptoBackendInfo {
  /** Where ML-DSA-65 runs. */
  mlDsa: BackendName;
  /** Ed25519 always runs in node:crypto. */
  ed25519: 'native';
  /** ML-KEM-768, X25519 and the AEADs run in noble. */
  kem: 'noble';
}

/** Which implementation each primitive uses in this process (probes on first call). */
export function cryptoBackend(): CryptoBackendInfo {
  return { mlDsa: mlDsa().name, ed25519: 'native', kem: 'noble' };
}

// ---------------------------------------------------------------------------------------------
// Ed25519 (node:crypto)

export interface Ed25519SigningKey {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export function ed25519FromSeed(seed: Uint8Array): Ed25519SigningKey {
  if (seed.length !== 32) throw new Error('Ed25519 seed must be 32 bytes');
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = rawPublic(createPublicKey(key), ED25519_SPKI_PREFIX);
  return { publicKey, sign: (message) => new Uint8Array(nodeSign(null, message, key)) };
}

const ed25519PublicCache = new KeyObjectCache(ED25519_SPKI_PREFIX);

export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== ED25519_PUBLIC || signature.length !== ED25519_SIGNATURE) return false;
  try {
    return nodeVerify(null, message, ed25519PublicCache.get(publicKey), signature);
  } catch {
    return false;
  }
}
