import { hashArgs } from '../engine/canonical-json.ts';
import type { ReplayStore } from '../engine/stores.ts';
import { PermitError } from './errors.ts';
import type { PublicKeyDirectory } from './key-directory.ts';
import type { PublicKeyBundle } from './keys.ts';
import { PERMIT_DOMAIN, splitToken, type PermitClaims } from './permit-token.ts';
import { parseEnvelope, verifyEnvelopeSync, type SignatureMode } from './signatures.ts';

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
}

export interface PermitExpectation {
  /** The action the tool is about to run; must equal `act`. */
  action?: string;
  /** The arguments the tool received; their canonical-JSON hash must equal `args` (key order does not matter). */
  args?: unknown;
}

/**
 * Verifies permit tokens. Checks, in order: format, signature mode, key id, signature(s), key
 * expiry, `iat`/`exp`, audience, action, arguments, single use. Throws PermitError(code).
 */
export class PermitVerifier {
  readonly mode: SignatureMode;
  readonly audience: string | undefined;
  readonly #keys: PublicKeyDirectory | PublicKeyBundle;
  readonly #replay: ReplayStore | undefined;
  readonly #skewMs: number;
  readonly #clock: () => number;

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
  }

  async verify(token: string, expect: PermitExpectation = {}): Promise<PermitClaims> {
    const { claims, claimsBytes, signatures } = splitToken(token);
    const envelope = parseEnvelope(signatures);
    if (envelope.mode !== this.mode) {
      throw new PermitError('ALG_MISMATCH', `expected a ${this.mode} permit, got ${envelope.mode === 'pq' ? 'a PQ-only' : 'a hybrid'} one`);
    }
    // The claims name their key inside the signed bytes; a signature by any other key is not theirs.
    if (envelope.kid !== claims.kid) throw new PermitError('BAD_SIGNATURE', 'the signature is not by the key the claims name');
    const now = this.#clock();
    verifyEnvelopeSync(this.#keys, this.mode, PERMIT_DOMAIN, claimsBytes, signatures, { now });
    if (claims.iat > now + this.#skewMs) throw new PermitError('NOT_YET_VALID', `permit issued in the future (${claims.iat - now} ms ahead)`);
    if (now >= claims.exp + this.#skewMs) throw new PermitError('EXPIRED', `permit expired ${now - claims.exp} ms ago`);
    if (this.audience !== undefined && claims.aud !== this.audience) {
      throw new PermitError('WRONG_AUDIENCE', `permit is for ${claims.aud === undefined ? 'no audience' : JSON.stringify(claims.aud)}, not ${JSON.stringify(this.audience)}`);
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
}
