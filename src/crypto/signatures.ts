/**
 * The signature envelope every Kavach signature uses (permits, audit checkpoints, key manifests,
 * invalidation messages). Binary, then base64url:
 *
 *   0x01 | mode (0x01 pq, 0x02 hybrid) | kid (16 bytes) | ML-DSA-65 sig (3309) | [Ed25519 sig (64)]
 *
 * Both algorithms sign the same bytes: "kavach/v1/<domain>" 0x00 | the 18-byte header | message.
 * ML-DSA also gets the FIPS 204 context string "kavach/<domain>". The header (and so the mode) is
 * inside the signed bytes: stripping the Ed25519 half of a hybrid signature does not yield a valid
 * PQ-only one.
 */
import { ED25519_SIGNATURE, MLDSA65_SIGNATURE, ed25519Verify, mlDsa } from './backend.ts';
import { concatBytes, fromBase64Url, toBase64Url, utf8 } from './encoding.ts';
import { PermitError } from './errors.ts';
import {
  KID_LENGTH,
  ed25519Sign,
  kidToBytes,
  mlDsaSign,
  resolveBundle,
  type KeyPair,
  type PublicKeyBundle,
  type ResolvedBundle,
} from './keys.ts';

export type SignatureMode = 'hybrid' | 'pq';

const VERSION = 0x01;
const MODE_BYTE: Record<SignatureMode, number> = { pq: 0x01, hybrid: 0x02 };
const HEADER = 2 + KID_LENGTH;
const DOMAIN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;

/** Envelope length for each mode, in bytes. */
export const ENVELOPE_BYTES: Record<SignatureMode, number> = {
  pq: HEADER + MLDSA65_SIGNATURE,
  hybrid: HEADER + MLDSA65_SIGNATURE + ED25519_SIGNATURE,
};

function checkMode(mode: SignatureMode): void {
  if (mode !== 'hybrid' && mode !== 'pq') throw new TypeError(`signature mode must be 'hybrid' or 'pq', not ${String(mode)}`);
}

function checkDomain(domain: string): void {
  if (typeof domain !== 'string' || !DOMAIN.test(domain)) throw new TypeError(`invalid signature domain ${JSON.stringify(domain)}`);
}

function signedBytes(domain: string, header: Uint8Array, message: Uint8Array): Uint8Array {
  return concatBytes(utf8(`kavach/v1/${domain}\0`), header, message);
}

function contextString(domain: string): Uint8Array {
  return utf8(`kavach/${domain}`);
}

/** Signs `message` under a domain tag; returns a compact base64url envelope naming kid and mode. */
export async function signEnvelope(kp: KeyPair, mode: SignatureMode, domain: string, message: Uint8Array): Promise<string> {
  return toBase64Url(signEnvelopeBytes(kp, mode, domain, message));
}

export function signEnvelopeBytes(kp: KeyPair, mode: SignatureMode, domain: string, message: Uint8Array): Uint8Array {
  const input = envelopeInput(kp.kid, mode, domain, message);
  const pqSig = mlDsaSign(kp, input.data, input.context);
  if (mode === 'pq') return concatBytes(input.header, pqSig);
  return concatBytes(input.header, pqSig, ed25519Sign(kp, input.data));
}

/** What the signers of one envelope sign: both algorithms sign `data`; ML-DSA-65 also gets `context`. */
export interface EnvelopeInput {
  /** The envelope's first 18 bytes (version, mode, kid); part of `data`. */
  header: Uint8Array;
  data: Uint8Array;
  /** The FIPS 204 context string for ML-DSA-65. */
  context: Uint8Array;
}

/** The bytes to sign for an envelope by key `kid`, for a signer that is not a KeyPair (an HSM). */
export function envelopeInput(kid: string, mode: SignatureMode, domain: string, message: Uint8Array): EnvelopeInput {
  checkMode(mode);
  checkDomain(domain);
  if (!(message instanceof Uint8Array)) throw new TypeError('message must be a Uint8Array');
  const kidBytes = kidToBytes(kid);
  if (!kidBytes) throw new TypeError(`invalid key id ${JSON.stringify(kid)}`);
  const header = new Uint8Array(HEADER);
  header[0] = VERSION;
  header[1] = MODE_BYTE[mode];
  header.set(kidBytes, 2);
  return { header, data: signedBytes(domain, header, message), context: contextString(domain) };
}

/** The envelope from its header and signatures (the Ed25519 one only in hybrid mode), base64url. */
export function assembleEnvelope(input: EnvelopeInput, pqSig: Uint8Array, edSig?: Uint8Array): string {
  return toBase64Url(edSig === undefined ? concatBytes(input.header, pqSig) : concatBytes(input.header, pqSig, edSig));
}

export interface ParsedEnvelope {
  mode: SignatureMode;
  kid: string;
  header: Uint8Array;
  pqSig: Uint8Array;
  edSig: Uint8Array | undefined;
}

/** Structural parse only (no key, no signature check). Throws PermitError BAD_FORMAT. */
export function parseEnvelope(envelope: string): ParsedEnvelope {
  const bytes = typeof envelope === 'string' ? fromBase64Url(envelope) : undefined;
  if (!bytes) throw new PermitError('BAD_FORMAT', 'signature envelope is not canonical base64url');
  if (bytes.length < HEADER || bytes[0] !== VERSION) throw new PermitError('BAD_FORMAT', 'unknown signature envelope version');
  const mode: SignatureMode | undefined = bytes[1] === MODE_BYTE.pq ? 'pq' : bytes[1] === MODE_BYTE.hybrid ? 'hybrid' : undefined;
  if (!mode) throw new PermitError('BAD_FORMAT', 'unknown signature mode');
  if (bytes.length !== ENVELOPE_BYTES[mode])
    throw new PermitError('BAD_FORMAT', `a ${mode} signature envelope is ${ENVELOPE_BYTES[mode]} bytes, not ${bytes.length}`);
  const pqEnd = HEADER + MLDSA65_SIGNATURE;
  return {
    mode,
    kid: toBase64Url(bytes.subarray(2, HEADER)),
    header: bytes.subarray(0, HEADER),
    pqSig: bytes.subarray(HEADER, pqEnd),
    edSig: mode === 'hybrid' ? bytes.subarray(pqEnd) : undefined,
  };
}

/**
 * Where verification finds a signer's public key by kid. A port, so that this module needs no
 * key directory: PublicKeyDirectory implements it (and imports this module to verify manifests).
 */
export interface KeyLookup {
  get(kid: string): PublicKeyBundle | undefined;
}

/** One trusted key, or a lookup of several. */
export type KeySource = PublicKeyBundle | KeyLookup;

function isKeyLookup(keys: KeySource): keys is KeyLookup {
  return typeof (keys as Partial<KeyLookup>).get === 'function';
}

function lookup(keys: KeySource, kid: string): ResolvedBundle {
  let bundle: PublicKeyBundle | undefined;
  if (isKeyLookup(keys)) bundle = keys.get(kid);
  else if (keys.kid === kid) bundle = keys;
  if (!bundle) throw new PermitError('UNKNOWN_KEY', `no public key with kid ${kid}`);
  try {
    return resolveBundle(bundle);
  } catch (err) {
    throw new PermitError('UNKNOWN_KEY', `the public key ${kid} is unusable: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Verifies an envelope; returns the signer's kid. Throws PermitError with a stable code:
 * BAD_FORMAT, ALG_MISMATCH (the envelope's mode is not `mode`), UNKNOWN_KEY, BAD_SIGNATURE,
 * KEY_EXPIRED (a valid signature by a key past its expiry at `now`).
 */
export async function verifyEnvelope(
  keys: KeySource,
  mode: SignatureMode,
  domain: string,
  message: Uint8Array,
  envelope: string,
  opts: { now?: number } = {},
): Promise<{ kid: string }> {
  return verifyEnvelopeSync(keys, mode, domain, message, envelope, opts);
}

export function verifyEnvelopeSync(
  keys: KeySource,
  mode: SignatureMode,
  domain: string,
  message: Uint8Array,
  envelope: string,
  opts: { now?: number } = {},
): { kid: string } {
  checkMode(mode);
  checkDomain(domain);
  if (!(message instanceof Uint8Array)) throw new TypeError('message must be a Uint8Array');
  const env = parseEnvelope(envelope);
  if (env.mode !== mode) {
    throw new PermitError('ALG_MISMATCH', `expected a ${mode} signature, got ${env.mode === 'pq' ? 'a PQ-only' : 'a hybrid'} one`);
  }
  const key = lookup(keys, env.kid);
  const data = signedBytes(domain, env.header, message);
  // Both halves are always checked; either failing fails the whole.
  const pqOk = mlDsa().verify(key.mldsa65, data, env.pqSig, contextString(domain));
  const edOk = env.edSig === undefined || ed25519Verify(key.ed25519, data, env.edSig);
  if (!pqOk || !edOk) throw new PermitError('BAD_SIGNATURE', 'signature does not verify');
  const now = opts.now ?? Date.now();
  const expires = key.bundle.expires;
  if (expires !== undefined && now >= expires) {
    throw new PermitError('KEY_EXPIRED', `key ${env.kid} expired at ${new Date(expires).toISOString()}`);
  }
  return { kid: env.kid };
}

/**
 * What a signature verified earlier (and cached) still needs at `now`: its key still trusted
 * (UNKNOWN_KEY once rotated out of the directory) and not past its expiry (KEY_EXPIRED).
 */
export function checkSignerKey(keys: KeySource, kid: string, now: number): void {
  const expires = lookup(keys, kid).bundle.expires;
  if (expires !== undefined && now >= expires) {
    throw new PermitError('KEY_EXPIRED', `key ${kid} expired at ${new Date(expires).toISOString()}`);
  }
}
