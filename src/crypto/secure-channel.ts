/**
 * Authenticated, encrypted messages between two Kavach key holders.
 *
 * seal: hybrid KEM (ML-KEM-768 encapsulation + ephemeral X25519) to the recipient; HKDF-SHA256 over
 * both shared secrets, with the header, the KEM ciphertext, the ephemeral key and both of the
 * recipient's public keys in `info`; ChaCha20-Poly1305 over (sender signature || payload), the
 * header as AAD. The sender signs header || KEM ciphertext || ephemeral key || payload, so the
 * signature is bound to this recipient, this context id, this time and this message id.
 * open: checks recipient, sender, context and freshness, decrypts, verifies the signature, then
 * remembers the message id for the freshness window (replays are refused).
 *
 * Wire: 0x01 | sender kid 16 | recipient kid 16 | time u64 | msg id 16 | ctx len u16 | ctx |
 *       ML-KEM ct 1088 | X25519 eph 32 | AEAD(envelope || payload) + tag 16
 */
import { randomBytes } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { wellFormed } from '../engine/canonical-json.ts';
import { concatBytes, equalBytes, fromUtf8, readU64, toBase64Url, utf8, writeU64 } from './encoding.ts';
import { ChannelError, PermitError } from './errors.ts';
import {
  KeyPair,
  kidToBytes,
  mlKemDecapsulate,
  resolveBundle,
  x25519SharedSecret,
  type PublicKeyBundle,
  type ResolvedBundle,
} from './keys.ts';
import { ENVELOPE_BYTES, signEnvelopeBytes, verifyEnvelopeSync, type SignatureMode } from './signatures.ts';

const VERSION = 0x01;
const KEM_CT = 1088;
const X_PUB = 32;
const TAG = 16;
const FIXED_HEADER = 1 + 16 + 16 + 8 + 16 + 2;
const MAX_CONTEXT = 1024;
const DOMAIN = 'secure-channel';

export interface SecureChannelOptions {
  /** Sender signature mode (default 'hybrid'); both ends must agree. */
  mode?: SignatureMode;
  /** How old a message may be (default 60 s). */
  windowMs?: number;
  /** How far in the future a message's time may be (default 5 s). */
  skewMs?: number;
  /** Replay cache capacity (default 100 000). When full of live ids, open refuses (REPLAY_CACHE_FULL). */
  maxReplayEntries?: number;
  /** ms since epoch; tests inject it. */
  clock?: () => number;
}

function contextBytes(contextId: string): Uint8Array {
  if (typeof contextId !== 'string' || contextId.length === 0) throw new TypeError('contextId must be a non-empty string');
  // UTF-8 encoding turns every lone surrogate into U+FFFD, so "a\uD800" and "a\uFFFD" would be
  // one context on the wire: refuse such ids, one context id per byte sequence.
  if (!wellFormed(contextId)) throw new TypeError('contextId must be well-formed UTF-16 (no lone surrogates)');
  const bytes = utf8(contextId);
  if (bytes.length > MAX_CONTEXT) throw new TypeError(`contextId is longer than ${MAX_CONTEXT} bytes`);
  return bytes;
}

/** Per-message secrets (shared secrets, ephemeral key, derived key) are zeroed once used. */
function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}

function deriveKey(
  ikm: Uint8Array,
  msgId: Uint8Array,
  header: Uint8Array,
  kemCt: Uint8Array,
  ephPub: Uint8Array,
  recipient: ResolvedBundle,
): Uint8Array {
  const info = concatBytes(utf8('kavach/secure-channel/v1\0'), header, kemCt, ephPub, recipient.mlkem768, recipient.x25519);
  return hkdf(sha256, ikm, msgId, info, 32 + 12);
}

export class SecureChannel {
  readonly #local: KeyPair;
  readonly #remote: ResolvedBundle;
  readonly #localKeys: ResolvedBundle;
  readonly #mode: SignatureMode;
  readonly #windowMs: number;
  readonly #skewMs: number;
  readonly #max: number;
  readonly #clock: () => number;
  /** message id (hex) → time after which the message is stale anyway. */
  readonly #seen = new Map<string, number>();

  constructor(local: KeyPair, remote: PublicKeyBundle, opts: SecureChannelOptions = {}) {
    if (!(local instanceof KeyPair)) throw new TypeError('local must be a KeyPair');
    this.#local = local;
    this.#localKeys = resolveBundle(local.publicKeys());
    this.#remote = resolveBundle(remote);
    this.#mode = opts.mode ?? 'hybrid';
    if (this.#mode !== 'hybrid' && this.#mode !== 'pq') throw new TypeError("mode must be 'hybrid' or 'pq'");
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#skewMs = opts.skewMs ?? 5_000;
    this.#max = opts.maxReplayEntries ?? 100_000;
    for (const [name, v] of [
      ['windowMs', this.#windowMs],
      ['skewMs', this.#skewMs],
      ['maxReplayEntries', this.#max],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0 || (name !== 'skewMs' && v === 0)) throw new TypeError(`${name} must be a positive integer`);
    }
    this.#clock = opts.clock ?? Date.now;
  }

  /** Encrypts and signs `payload` for the remote key holder, bound to `contextId`. */
  seal(payload: Uint8Array, opts: { contextId: string }): Uint8Array {
    if (!(payload instanceof Uint8Array)) throw new TypeError('payload must be a Uint8Array');
    const ctx = contextBytes(opts?.contextId);
    const now = this.#clock();
    const remote = this.#remote;
    if (remote.bundle.expires !== undefined && now >= remote.bundle.expires) {
      throw new ChannelError('KEY_EXPIRED', `recipient key ${remote.bundle.kid} has expired`);
    }
    // The recipient refuses a message signed by an expired key (KEY_EXPIRED): say so now, not there.
    if (this.#local.isExpired(now)) throw new ChannelError('KEY_EXPIRED', `sender key ${this.#local.kid} has expired`);
    const msgId = new Uint8Array(randomBytes(16));
    const header = new Uint8Array(FIXED_HEADER + ctx.length);
    const view = new DataView(header.buffer);
    header[0] = VERSION;
    header.set(kidToBytes(this.#local.kid) as Uint8Array, 1);
    header.set(kidToBytes(remote.bundle.kid) as Uint8Array, 17);
    writeU64(view, 33, now);
    header.set(msgId, 41);
    view.setUint16(57, ctx.length);
    header.set(ctx, FIXED_HEADER);

    const { cipherText: kemCt, sharedSecret: kemSs } = ml_kem768.encapsulate(remote.mlkem768);
    const eph = x25519.keygen();
    let xSs: Uint8Array | undefined;
    let ikm: Uint8Array | undefined;
    let okm: Uint8Array | undefined;
    try {
      xSs = x25519.getSharedSecret(eph.secretKey, remote.x25519);
      const bound = concatBytes(header, kemCt, eph.publicKey);
      ikm = concatBytes(kemSs, xSs);
      okm = deriveKey(ikm, msgId, header, kemCt, eph.publicKey, remote);
      const signature = signEnvelopeBytes(this.#local, this.#mode, DOMAIN, concatBytes(bound, payload));
      const sealed = chacha20poly1305(okm.subarray(0, 32), okm.subarray(32), bound).encrypt(concatBytes(signature, payload));
      return concatBytes(bound, sealed);
    } finally {
      wipe(kemSs, eph.secretKey, xSs, ikm, okm);
    }
  }

  /** Opens a message sealed by the remote key holder for us under `expectedContextId`. Throws ChannelError. */
  open(sealed: Uint8Array, opts: { expectedContextId: string }): Uint8Array {
    const expected = contextBytes(opts?.expectedContextId);
    if (!(sealed instanceof Uint8Array) || sealed.length < FIXED_HEADER) throw new ChannelError('BAD_FORMAT', 'message too short');
    if (sealed[0] !== VERSION) throw new ChannelError('BAD_FORMAT', 'unknown message version');
    const view = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const ctxLen = view.getUint16(57);
    const headerLen = FIXED_HEADER + ctxLen;
    if (ctxLen === 0 || ctxLen > MAX_CONTEXT || sealed.length < headerLen + KEM_CT + X_PUB + ENVELOPE_BYTES.pq + TAG) {
      throw new ChannelError('BAD_FORMAT', 'message is malformed or truncated');
    }
    const header = sealed.subarray(0, headerLen);
    if (!equalBytes(header.subarray(17, 33), kidToBytes(this.#local.kid) as Uint8Array)) {
      throw new ChannelError('WRONG_RECIPIENT', `message is for key ${toBase64Url(header.subarray(17, 33))}, not ${this.#local.kid}`);
    }
    if (!equalBytes(header.subarray(1, 17), kidToBytes(this.#remote.bundle.kid) as Uint8Array)) {
      throw new ChannelError(
        'UNKNOWN_SENDER',
        `message is from key ${toBase64Url(header.subarray(1, 17))}, not the channel's peer ${this.#remote.bundle.kid}`,
      );
    }
    if (!equalBytes(header.subarray(FIXED_HEADER), expected)) {
      let got: string;
      try {
        got = JSON.stringify(fromUtf8(header.subarray(FIXED_HEADER)));
      } catch {
        got = '(not UTF-8)';
      }
      throw new ChannelError('WRONG_CONTEXT', `message is for context ${got}, not ${JSON.stringify(opts.expectedContextId)}`);
    }
    const now = this.#clock();
    const sentAt = readU64(view, 33);
    if (sentAt === undefined || sentAt > now + this.#skewMs || sentAt < now - this.#windowMs) {
      throw new ChannelError('STALE', 'message time is outside the freshness window');
    }
    const msgId = header.subarray(41, 57);
    const kemCt = sealed.subarray(headerLen, headerLen + KEM_CT);
    const ephPub = sealed.subarray(headerLen + KEM_CT, headerLen + KEM_CT + X_PUB);
    const bound = sealed.subarray(0, headerLen + KEM_CT + X_PUB);
    let plain: Uint8Array;
    let kemSs: Uint8Array | undefined;
    let xSs: Uint8Array | undefined;
    let ikm: Uint8Array | undefined;
    let okm: Uint8Array | undefined;
    try {
      kemSs = mlKemDecapsulate(this.#local, kemCt);
      xSs = x25519SharedSecret(this.#local, ephPub);
      ikm = concatBytes(kemSs, xSs);
      okm = deriveKey(ikm, msgId, header, kemCt, ephPub, this.#localKeys);
      plain = chacha20poly1305(okm.subarray(0, 32), okm.subarray(32), bound).decrypt(sealed.subarray(bound.length));
    } catch {
      throw new ChannelError('DECRYPT_FAILED', 'message does not decrypt (tampered, or not for this key)');
    } finally {
      wipe(kemSs, xSs, ikm, okm);
    }
    // The envelope says its own mode (so its length); verifyEnvelope then insists on ours.
    const envLen = plain[1] === 0x02 ? ENVELOPE_BYTES.hybrid : ENVELOPE_BYTES.pq;
    if (plain.length < envLen) throw new ChannelError('BAD_FORMAT', 'sealed payload is shorter than its signature');
    const envelope = plain.subarray(0, envLen);
    const payload = plain.subarray(envLen);
    try {
      verifyEnvelopeSync(this.#remote.bundle, this.#mode, DOMAIN, concatBytes(bound, payload), toBase64Url(envelope), { now });
    } catch (err) {
      const code = err instanceof PermitError ? err.code : undefined;
      if (code === 'KEY_EXPIRED') throw new ChannelError('KEY_EXPIRED', `sender key ${this.#remote.bundle.kid} has expired`);
      if (code === 'ALG_MISMATCH') throw new ChannelError('ALG_MISMATCH', (err as Error).message);
      throw new ChannelError('BAD_SIGNATURE', `sender signature does not verify: ${(err as Error).message}`);
    }
    this.#remember(Buffer.from(msgId).toString('hex'), sentAt + this.#windowMs, now);
    return payload.slice();
  }

  /** Only authenticated ids reach here, so the cache cannot be filled by forgeries. */
  #remember(id: string, staleAfter: number, now: number): void {
    const until = this.#seen.get(id);
    if (until !== undefined && until >= now) throw new ChannelError('REPLAYED', 'message was already opened');
    if (this.#seen.size >= this.#max) {
      for (const [key, t] of this.#seen) if (t < now) this.#seen.delete(key);
      if (this.#seen.size >= this.#max)
        throw new ChannelError('REPLAY_CACHE_FULL', 'replay cache is full of live message ids; refusing rather than forgetting one');
    }
    this.#seen.set(id, staleAfter);
  }
}
