import { randomBytes } from 'node:crypto';
import { hashArgs } from '../engine/canonical-json.ts';
import { PRINCIPAL_KINDS } from '../engine/context.ts';
import type { IssuedPermit, PermitIssuer, PermitRequest } from '../engine/ports.ts';
import { toBase64Url } from './encoding.ts';
import { PermitError } from './errors.ts';
import type { KeyPair } from './keys.ts';
import { PERMIT_DOMAIN, encodeClaims, joinToken, type PermitClaims } from './permit-token.ts';
import { signEnvelope, type SignatureMode } from './signatures.ts';

export interface PermitSignerOptions {
  mode: SignatureMode;
  /** The `iss` claim (default "kavach"). */
  issuer?: string;
}

/** Signs permits for the gate (`GateOptions.signer`). Any throw here becomes a Refuse SIGNING_FAILED. */
export class PermitSigner implements PermitIssuer {
  readonly mode: SignatureMode;
  readonly issuer: string;
  readonly #kp: KeyPair;

  private constructor(kp: KeyPair, opts: PermitSignerOptions) {
    if (opts?.mode !== 'hybrid' && opts?.mode !== 'pq') throw new TypeError("PermitSigner mode must be 'hybrid' or 'pq'");
    this.#kp = kp;
    this.mode = opts.mode;
    this.issuer = opts.issuer ?? 'kavach';
    if (typeof this.issuer !== 'string' || this.issuer.length === 0) throw new TypeError('issuer must be a non-empty string');
  }

  static fromKeyPair(kp: KeyPair, opts: PermitSignerOptions): PermitSigner {
    return new PermitSigner(kp, opts);
  }

  get kid(): string {
    return this.#kp.kid;
  }

  async issue(req: PermitRequest): Promise<IssuedPermit> {
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
    if (this.#kp.isExpired(req.issuedAt)) throw new PermitError('KEY_EXPIRED', `signing key ${this.#kp.kid} has expired`);
    const jti = toBase64Url(new Uint8Array(randomBytes(16)));
    const claims: PermitClaims = {
      v: 1,
      kid: this.#kp.kid,
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
    const bytes = encodeClaims(claims);
    const signatures = await signEnvelope(this.#kp, this.mode, PERMIT_DOMAIN, bytes);
    return { token: joinToken(bytes, signatures), id: jti };
  }
}
