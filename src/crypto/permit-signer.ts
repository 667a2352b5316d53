import { randomBytes } from 'node:crypto';
import { hashArgs } from '../engine/canonical-json.ts';
import { PRINCIPAL_KINDS } from '../engine/context.ts';
import type { IssuedPermit, PermitIssuer, PermitRequest } from '../engine/ports.ts';
import { toBase64Url } from './encoding.ts';
import { PermitError } from './errors.ts';
import type { KeyPair } from './keys.ts';
import { BATCH_DOMAIN } from './batch-proof.ts';
import { PermitBatcher, type BatchOptions } from './batch-signer.ts';
import { ExternalEnvelopeSigner, type ExternalSignerOptions } from './external-signer.ts';
import { PERMIT_DOMAIN, encodeClaims, joinToken, validateClaims, type PermitClaims } from './permit-token.ts';
import { SigningPool } from './signing-pool.ts';
import { signEnvelope, type SignatureMode } from './signatures.ts';

// jti randomness drawn 4 KiB at a time: one getrandom call per 256 permits instead of one each.
let entropy = new Uint8Array(0);
let entropyAt = 0;
function nextJti(): string {
  if (entropyAt + 16 > entropy.length) {
    entropy = new Uint8Array(randomBytes(4096));
    entropyAt = 0;
  }
  const jti = toBase64Url(entropy.subarray(entropyAt, entropyAt + 16));
  entropyAt += 16;
  return jti;
}

export interface PermitSignerOptions {
  mode: SignatureMode;
  /** The `iss` claim (default "kavach"). */
  issuer?: string;
  /**
   * Where ML-DSA runs. Default: the process-wide worker pool (one thread per core), so signing
   * never blocks the caller's event loop. A pool of your own (you close it), or `false` to sign
   * on the calling thread.
   */
  pool?: SigningPool | false;
  /**
   * Batch signing: permits issued within `maxDelayMs` share one signature over the root of a
   * Merkle tree of their claims; each token carries its inclusion proof (docs/batch-signing.md).
   */
  batch?: BatchOptions;
}

/**
 * `PermitSigner.fromExternal`: a key held outside the process (HSM, KMS, signing service). There
 * is no worker pool (a worker cannot carry a function, and the external side does the heavy
 * work): `pool` may only be `false` or absent. Batch signing works: one external signature per batch.
 */
export type ExternalPermitSignerOptions = ExternalSignerOptions & Omit<PermitSignerOptions, 'pool'> & { pool?: false };

/** The key a signer signs with: a KeyPair in this process, or an external signer. */
type SigningKey = { kind: 'pair'; kp: KeyPair } | { kind: 'external'; signer: ExternalEnvelopeSigner };

/** Signs permits for the gate (`GateOptions.signer`). Any throw here becomes a Refuse SIGNING_FAILED. */
export class PermitSigner implements PermitIssuer {
  readonly mode: SignatureMode;
  readonly issuer: string;
  readonly #key: SigningKey;
  /** Signs `message` in `domain` with this signer's key and mode; resolves to the envelope. */
  readonly #signEnvelope: (domain: string, message: Uint8Array) => Promise<string>;
  readonly #pool: SigningPool | undefined;
  readonly #sharedPool: boolean;
  readonly #batcher: PermitBatcher | undefined;
  #closed = false;
  /** Per-permit signatures in flight: close() lets them finish before it lets go of the pool. */
  readonly #signing = new Set<Promise<string>>();

  private constructor(key: SigningKey, opts: PermitSignerOptions) {
    if (opts?.mode !== 'hybrid' && opts?.mode !== 'pq') throw new TypeError("PermitSigner mode must be 'hybrid' or 'pq'");
    this.#key = key;
    this.mode = opts.mode;
    this.issuer = opts.issuer ?? 'kavach';
    if (typeof this.issuer !== 'string' || this.issuer.length === 0) throw new TypeError('issuer must be a non-empty string');
    if (opts.pool !== undefined && opts.pool !== false && !(opts.pool instanceof SigningPool))
      throw new TypeError('pool must be a SigningPool or false');
    if (opts.batch !== undefined && (typeof opts.batch !== 'object' || opts.batch === null)) throw new TypeError('batch must be an object');
    if (key.kind === 'external') {
      // Checked by fromExternal already; kept here so no path gives a pool a key it cannot carry.
      if (opts.pool)
        throw new TypeError('an external signer cannot use a SigningPool: its key is not in this process (pass pool: false or omit it)');
      this.#sharedPool = false;
      this.#pool = undefined;
      const external = key.signer;
      this.#signEnvelope = (domain, message) => external.sign(domain, message);
    } else {
      const { kp } = key;
      this.#sharedPool = opts.pool === undefined;
      this.#pool = opts.pool === undefined ? SigningPool.acquireShared(kp.kid) : opts.pool || undefined;
      const pool = this.#pool;
      this.#signEnvelope = pool
        ? (domain, message) => pool.signEnvelope(kp, this.mode, domain, message)
        : (domain, message) => signEnvelope(kp, this.mode, domain, message);
    }
    if (opts.batch) {
      const signRoot = (message: Uint8Array) => this.#signEnvelope(BATCH_DOMAIN, message);
      try {
        this.#batcher = new PermitBatcher(signRoot, opts.batch, opts.batch.concurrency ?? Math.max(1, (this.#pool?.size ?? 1) - 1));
      } catch (err) {
        // No signer comes out of this constructor to close: give the shared pool back now, or its
        // user count never reaches zero and it (with this key in its workers) outlives every signer.
        if (this.#sharedPool) SigningPool.releaseShared(this.#pool as SigningPool, this.kid).catch(() => undefined);
        throw err;
      }
    }
  }

  static fromKeyPair(kp: KeyPair, opts: PermitSignerOptions): PermitSigner {
    return new PermitSigner({ kind: 'pair', kp }, opts);
  }

  /**
   * A signer whose key stays outside the process (HSM, KMS, another process): `signMlDsa` (and
   * `signEd25519` for hybrid) sign the envelope bytes; each signature is verified against
   * `publicKeys` before a permit carries it. Runs on the calling thread (no worker pool).
   */
  static fromExternal(opts: ExternalPermitSignerOptions): PermitSigner {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('PermitSigner.fromExternal needs options');
    if (opts.pool !== undefined && opts.pool !== false) {
      throw new TypeError('an external signer cannot use a SigningPool: its key is not in this process (pass pool: false or omit it)');
    }
    const signer = new ExternalEnvelopeSigner(opts, opts.mode);
    return new PermitSigner({ kind: 'external', signer }, { mode: opts.mode, issuer: opts.issuer, batch: opts.batch, pool: false });
  }

  get kid(): string {
    return this.#key.kind === 'pair' ? this.#key.kp.kid : this.#key.signer.kid;
  }

  /** True when the key signs outside this process (`fromExternal`). */
  get external(): boolean {
    return this.#key.kind === 'external';
  }

  /** True when permits share batch signatures. */
  get batched(): boolean {
    return this.#batcher !== undefined;
  }

  /** The worker pool signing for this signer (undefined: it signs on the calling thread). */
  get pool(): SigningPool | undefined {
    return this.#pool;
  }

  async issue(req: PermitRequest): Promise<IssuedPermit> {
    if (this.#closed) throw new Error('the permit signer is closed');
    const bad = (why: string) => new TypeError(`cannot issue permit: ${why}`);
    if (typeof req?.principalId !== 'string' || req.principalId === '') throw bad('principalId');
    if (!(PRINCIPAL_KINDS as readonly string[]).includes(req.principalKind)) throw bad('principalKind');
    if (typeof req.action !== 'string' || req.action === '') throw bad('action');
    if (typeof req.evaluationId !== 'string' || req.evaluationId === '') throw bad('evaluationId');
    if (!Number.isSafeInteger(req.issuedAt) || !Number.isSafeInteger(req.expiresAt) || req.issuedAt < 0 || req.expiresAt <= req.issuedAt) {
      throw bad('issuedAt/expiresAt must be integers (ms) with expiresAt after issuedAt');
    }
    if (req.audience !== undefined && (typeof req.audience !== 'string' || req.audience === '')) throw bad('audience');
    if (req.sessionId !== undefined && (typeof req.sessionId !== 'string' || req.sessionId === '')) throw bad('sessionId');
    if (req.approvalId !== undefined && (typeof req.approvalId !== 'string' || req.approvalId === '' || req.approvalId.length > 4096))
      throw bad('approvalId');
    this.#checkKey(req.issuedAt);
    const jti = nextJti();
    const claims: PermitClaims = {
      v: 1,
      kid: this.kid,
      iss: this.issuer,
      sub: req.principalId,
      knd: req.principalKind,
      act: req.action,
      args: hashArgs(req.args),
      eid: req.evaluationId,
      jti,
      iat: req.issuedAt,
      exp: req.expiresAt,
    };
    if (req.audience !== undefined) claims.aud = req.audience;
    if (req.sessionId !== undefined) claims.sid = req.sessionId;
    if (req.approvalId !== undefined) claims.apr = req.approvalId;
    const bytes = encodeClaims(claims);
    if (this.#batcher) return { token: await this.#batcher.add(bytes), id: jti };
    return { token: await this.#signSingle(bytes), id: jti };
  }

  /**
   * Mints a token from complete claims, for tools that issue permits outside a gate (the gate
   * calls `issue`). The claims must be valid (the verifier's own schema) and name this signer's
   * key; signed singly, never batched. Throws PermitError BAD_FORMAT / KEY_EXPIRED, or the
   * signing error.
   */
  async signClaims(claims: PermitClaims): Promise<string> {
    if (this.#closed) throw new Error('the permit signer is closed');
    const valid = validateClaims(claims);
    if (valid.kid !== this.kid) throw new PermitError('BAD_FORMAT', `the claims name key ${valid.kid}, not this signer's ${this.kid}`);
    this.#checkKey(valid.iat);
    return this.#signSingle(encodeClaims(valid));
  }

  #checkKey(now: number): void {
    const expired = this.#key.kind === 'pair' ? this.#key.kp.isExpired(now) : this.#key.signer.isExpired(now);
    if (expired) throw new PermitError('KEY_EXPIRED', `signing key ${this.kid} has expired`);
  }

  async #signSingle(bytes: Uint8Array): Promise<string> {
    const signing = this.#signEnvelope(PERMIT_DOMAIN, bytes);
    this.#signing.add(signing);
    try {
      return joinToken(bytes, await signing);
    } finally {
      this.#signing.delete(signing);
    }
  }

  /**
   * Signs any open batch, waits for it and for permits already being signed, and lets go of the
   * workers: the shared pool closes when its last signer does (a pool you passed in stays yours
   * to close). Later issues reject.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#batcher?.flush();
    await Promise.allSettled(this.#signing);
    if (this.#sharedPool) await SigningPool.releaseShared(this.#pool as SigningPool, this.kid);
  }
}
