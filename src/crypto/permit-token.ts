/**
 * Permit token encoding: `kv1.<claims>.<signatures>`, both parts base64url. The claims part is
 * the canonical JSON (RFC 8785) of the claims; the signatures part is a signature envelope over
 * the claims bytes in the "permit" domain. A batch-signed permit has four parts,
 * `kv1.<claims>.<proof>.<signatures>`: an inclusion proof of the claims in a Merkle tree, and an
 * envelope over the tree's root in the "permit-batch" domain (batch-proof.ts). The part count
 * tells the two apart. Decoding is strict: one token has exactly one spelling.
 */
import { z } from 'zod';
import { canonicalJson } from '../engine/canonical-json.ts';
import { PRINCIPAL_KINDS, type PrincipalKind } from '../engine/context.ts';
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from './encoding.ts';
import { PermitError } from './errors.ts';

export const PERMIT_PREFIX = 'kv1';
export const PERMIT_DOMAIN = 'permit';
/** Far above a real token (~5 KB); bounds the work an attacker can make a verifier do. */
export const MAX_TOKEN_LENGTH = 16_384;

/** What a permit says. Times are ms since epoch. */
export interface PermitClaims {
  v: 1;
  /** Key id of the signing key. */
  kid: string;
  iss: string;
  /** Who the permit is for (MCP: the server name). */
  aud?: string;
  /** Principal id. */
  sub: string;
  knd: PrincipalKind;
  /** Action name. */
  act: string;
  /** SHA-256 (base64url) of the canonical JSON of the call's arguments. */
  args: string;
  sid?: string;
  /** Evaluation id of the verdict. */
  eid: string;
  /** Unique permit id. */
  jti: string;
  iat: number;
  exp: number;
  /** The approval request the call was granted under (an approve policy matched), when it was. */
  apr?: string;
}

const text = z.string().min(1).max(4096);
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const claimsSchema = z
  .strictObject({
    v: z.literal(1),
    kid: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
    iss: text,
    aud: text.optional(),
    sub: text,
    knd: z.enum(PRINCIPAL_KINDS),
    act: text,
    args: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    sid: text.optional(),
    eid: text,
    jti: z.string().min(16).max(128),
    iat: time,
    exp: time,
    apr: text.optional(),
  })
  .refine((c) => c.exp > c.iat, { message: 'exp must be after iat' });

export function encodeClaims(claims: PermitClaims): Uint8Array {
  return utf8(canonicalJson(claims));
}

export interface SplitToken {
  claims: PermitClaims;
  claimsBytes: Uint8Array;
  signatures: string;
  /** The batch inclusion proof (base64url), present only in a batch-signed token. */
  proof?: string;
}

/** Splits and strictly decodes a token's claims. Throws PermitError BAD_FORMAT. */
export function splitToken(token: string): SplitToken {
  if (typeof token !== 'string') throw new PermitError('BAD_FORMAT', 'a permit token is a string');
  if (token.length > MAX_TOKEN_LENGTH) throw new PermitError('BAD_FORMAT', 'permit token too long');
  const parts = token.split('.');
  if ((parts.length !== 3 && parts.length !== 4) || parts[0] !== PERMIT_PREFIX)
    throw new PermitError('BAD_FORMAT', `not a ${PERMIT_PREFIX} permit token`);
  const claimsBytes = fromBase64Url(parts[1] as string);
  if (!claimsBytes || claimsBytes.length === 0) throw new PermitError('BAD_FORMAT', 'claims are not canonical base64url');
  let parsed: unknown;
  let json: string;
  try {
    json = fromUtf8(claimsBytes);
    parsed = JSON.parse(json);
  } catch {
    throw new PermitError('BAD_FORMAT', 'claims are not UTF-8 JSON');
  }
  const result = claimsSchema.safeParse(parsed);
  if (!result.success) {
    throw new PermitError(
      'BAD_FORMAT',
      `claims are invalid: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const claims = result.data as PermitClaims;
  // Re-encoding must give the same bytes: no duplicate keys, whitespace or alternative spellings.
  // canonicalJson throws on what it cannot encode (a lone surrogate escaped in a claim string):
  // that is a malformed token too, and must surface as BAD_FORMAT, not as a stray TypeError.
  let canonical: string;
  try {
    canonical = canonicalJson(claims);
  } catch (err) {
    throw new PermitError('BAD_FORMAT', `claims cannot be canonical JSON: ${(err as Error).message}`);
  }
  if (canonical !== json) throw new PermitError('BAD_FORMAT', 'claims are not in canonical JSON');
  if (parts.length === 4) return { claims, claimsBytes, proof: parts[2] as string, signatures: parts[3] as string };
  return { claims, claimsBytes, signatures: parts[2] as string };
}

export function joinToken(claimsBytes: Uint8Array, signatures: string): string {
  return `${PERMIT_PREFIX}.${toBase64Url(claimsBytes)}.${signatures}`;
}

/** A batch-signed token: claims, inclusion proof, envelope over the batch root. */
export function joinBatchToken(claimsBytes: Uint8Array, proof: string, signatures: string): string {
  return `${PERMIT_PREFIX}.${toBase64Url(claimsBytes)}.${proof}.${signatures}`;
}

/**
 * Claims a signer was handed whole (PermitSigner.signClaims): the same schema and canonical-JSON
 * rule a verifier applies, so a minted token is one the verifier can read. Throws PermitError BAD_FORMAT.
 */
export function validateClaims(value: unknown): PermitClaims {
  const result = claimsSchema.safeParse(value);
  if (!result.success) {
    throw new PermitError(
      'BAD_FORMAT',
      `claims are invalid: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const claims = result.data as PermitClaims;
  try {
    canonicalJson(claims);
  } catch (err) {
    throw new PermitError('BAD_FORMAT', `claims cannot be canonical JSON: ${(err as Error).message}`);
  }
  return claims;
}
