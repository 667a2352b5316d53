import { hashArgs } from '../engine/canonical-json.ts';
import type { ReplayStore } from '../engine/stores.ts';
import { PermitError } from './errors.ts';
import type { PublicKeyDirectory } from './key-directory.ts';
import type { PublicKeyBundle } from './keys.ts';
import { BATCH_DOMAIN, decodeProof, rootMessage } from './batch-proof.ts';
import { fromBase64Url, toBase64Url } from './encoding.ts';
import { rootFromPath } from './merkle.ts';
import { PERMIT_DOMAIN, splitToken, type PermitClaims } from './permit-token.ts';
import { checkSignerKey, parseEnvelope, verifyEnvelopeSync, type SignatureMode } from './signatures.ts';

export interface PermitVerifierOptions {
  keys: PublicKeyDirectory | PublicKeyBundle;
  mode: SignatureMode;
  /** When set, the token's `aud` must equal it. Set it: a verifier without it accepts any audience. */
  audience?: string;
  /** When set, each `jti` verifies once. */
  replay?: ReplayStore;
  /** Clock skew tolerated on `iat` and `exp` (default 2000 ms). */
  skewMs?: number;
  /** ms since epoch; tests inject it. */
  clock?: () => number;
  /** Batch roots whose signature this verifier has checked, kept to skip re-verifying (default 1024; 0 = none). */
  rootCacheSize?: number;
}

export interface PermitExpectation {
  /** The action the tool is about to run; must equal `act`. */
  action?: string;
  /** The arguments the tool received; their canonical-JSON hash must equal `args` (key order does not matter). */
  args?: unknown;
  /** The audience of this call, for a verifier shared by several audiences; must equal `aud`. */
  audience?: string;
  /** The principal the tool acts for; must equal `sub`. */
  principal?: string;
  /** The session the tool acts in; must equal `sid` (a permit without `sid` is refused). */
  session?: string;
}

/**
 * Verifies permit tokens. Checks, in order: format, signature mode, key id, signature(s), key
 * expiry, `iat`/`exp`, audience, principal, session, action, arguments, single use. Throws
 * PermitError(code). Every check runs before the replay store is asked, so a refused permit is
 * not used up.
 */
export class PermitVerifier {
  readonly mode: SignatureMode;
  readonly audience: string | undefined;
  readonly #keys: PublicKeyDirectory | PublicKeyBundle;
  readonly #replay: ReplayStore | undefined;
  readonly #skewMs: number;
  readonly #clock: () => number;
  /** LRU of verified batch roots: "mode:kid:root message" → the envelope that verified it. */
  readonly #roots = new Map<string, string>();
  readonly #rootCacheSize: number;

  constructor(opts: PermitVerifierOptions) {
    if (opts?.mode !== 'hybrid' && opts?.mode !== 'pq') throw new TypeError("PermitVerifier mode must be 'hybrid' or 'pq'");
    if (!opts.keys) throw new TypeError('PermitVerifier needs keys');
    const skew = opts.skewMs ?? 2_000;
    if (!Number.isFinite(skew) || skew < 0) throw new TypeError('skewMs must be a non-negative number');
    this.mode = opts.mode;
    this.audience = opts.audience;
    this.#keys = opts.keys;
    this.#replay = opts.replay;
    this.#skewMs = skew;
    this.#clock = opts.clock ?? Date.now;
    const cache = opts.rootCacheSize ?? 1024;
    if (!Number.isSafeInteger(cache) || cache < 0) throw new TypeError('rootCacheSize must be a non-negative integer');
    this.#rootCacheSize = cache;
  }

  async verify(token: string, expect: PermitExpectation = {}): Promise<PermitClaims> {
    const { claims, claimsBytes, signatures, proof } = splitToken(token);
    const envelope = parseEnvelope(signatures);
    if (envelope.mode !== this.mode) {
      throw new PermitError('ALG_MISMATCH', `expected a ${this.mode} permit, got ${envelope.mode === 'pq' ? 'a PQ-only' : 'a hybrid'} one`);
    }
    // The claims name their key inside the signed bytes; a signature by any other key is not theirs.
    if (envelope.kid !== claims.kid) throw new PermitError('BAD_SIGNATURE', 'the signature is not by the key the claims name');
    const now = this.#clock();
    if (proof === undefined) verifyEnvelopeSync(this.#keys, this.mode, PERMIT_DOMAIN, claimsBytes, signatures, { now });
    else this.#verifyBatch(claimsBytes, proof, signatures, claims.kid, now);
    if (claims.iat > now + this.#skewMs)
      throw new PermitError('NOT_YET_VALID', `permit issued in the future (${claims.iat - now} ms ahead)`);
    if (now >= claims.exp + this.#skewMs) throw new PermitError('EXPIRED', `permit expired ${now - claims.exp} ms ago`);
    // Every expectation is checked before the replay store is asked: a refused permit stays unused.
    for (const audience of [this.audience, expect.audience]) {
      if (audience !== undefined && claims.aud !== audience) {
        throw new PermitError(
          'WRONG_AUDIENCE',
          `permit is for ${claims.aud === undefined ? 'no audience' : JSON.stringify(claims.aud)}, not ${JSON.stringify(audience)}`,
        );
      }
    }
    if (expect.principal !== undefined && claims.sub !== expect.principal) {
      throw new PermitError(
        'WRONG_PRINCIPAL',
        `permit is for principal ${JSON.stringify(claims.sub)}, not ${JSON.stringify(expect.principal)}`,
      );
    }
    if (expect.session !== undefined && claims.sid !== expect.session) {
      throw new PermitError(
        'WRONG_SESSION',
        `permit is for ${claims.sid === undefined ? 'no session' : `session ${JSON.stringify(claims.sid)}`}, not ${JSON.stringify(expect.session)}`,
      );
    }
    if (expect.action !== undefined && claims.act !== expect.action) {
      throw new PermitError('WRONG_ACTION', `permit is for action ${JSON.stringify(claims.act)}, not ${JSON.stringify(expect.action)}`);
    }
    if ('args' in expect) {
      let hash: string;
      try {
        hash = hashArgs(expect.args);
      } catch (err) {
        throw new PermitError('ARGS_MISMATCH', `arguments cannot be canonicalised: ${(err as Error).message}`);
      }
      if (hash !== claims.args) throw new PermitError('ARGS_MISMATCH', 'arguments differ from the permitted ones');
    }
    if (this.#replay) {
      let first: boolean;
      try {
        first = await this.#replay.claim(claims.jti, claims.exp + this.#skewMs, now);
      } catch (err) {
        throw new PermitError('REPLAY_CHECK_FAILED', `replay store failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
      if (!first) throw new PermitError('REPLAYED', `permit ${claims.jti} was already used`);
    }
    return Object.freeze({ ...claims });
  }

  /**
   * A batch token: the claims' inclusion proof leads to a root; the envelope must sign that root
   * (with its leaf count). A root is re-verified unless this exact envelope already verified it.
   */
  #verifyBatch(claimsBytes: Uint8Array, proofText: string, signatures: string, kid: string, now: number): void {
    const bytes = fromBase64Url(proofText);
    if (!bytes) throw new PermitError('BAD_FORMAT', 'batch proof is not canonical base64url');
    const { count, index, path } = decodeProof(bytes);
    const root = rootFromPath(claimsBytes, index, count, path);
    if (!root) throw new PermitError('BAD_FORMAT', 'batch proof does not fit its leaf index and count');
    const message = rootMessage(count, root);
    const key = `${this.mode}:${kid}:${toBase64Url(message)}`;
    if (this.#roots.get(key) === signatures) {
      this.#roots.delete(key);
      this.#roots.set(key, signatures);
      checkSignerKey(this.#keys, kid, now);
      return;
    }
    verifyEnvelopeSync(this.#keys, this.mode, BATCH_DOMAIN, message, signatures, { now });
    if (this.#rootCacheSize === 0) return;
    if (this.#roots.size >= this.#rootCacheSize) this.#roots.delete(this.#roots.keys().next().value as string);
    this.#roots.set(key, signatures);
  }
}
