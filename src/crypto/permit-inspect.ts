/**
 * Reading a permit token WITHOUT verifying it: for tools that display, log or route tokens. The
 * structure is checked as strictly as a verifier checks it (one token, one spelling), but no
 * signature, key, time, audience or replay check runs: nothing read here may grant anything. To
 * act on a permit, use PermitVerifier.
 */
import { decodeProof } from './batch-proof.ts';
import { fromBase64Url } from './encoding.ts';
import { PermitError } from './errors.ts';
import { splitToken, type PermitClaims } from './permit-token.ts';
import { parseEnvelope, type SignatureMode } from './signatures.ts';

export interface InspectedPermit {
  /** UNVERIFIED claims. */
  claims: PermitClaims;
  /** The signature envelope, parsed, not verified: its mode, the kid it names, and its text. */
  signature: { mode: SignatureMode; kid: string; envelope: string };
  /** A batch-signed token: its place in the batch's Merkle tree (unverified) and the proof text. */
  batch?: { size: number; index: number; proof: string };
}

/**
 * Parses a `kv1` token into its claims and signature parts without verifying anything. Throws
 * PermitError BAD_FORMAT on a malformed token.
 */
export function inspectPermitToken(token: string): InspectedPermit {
  const { claims, signatures, proof } = splitToken(token);
  const envelope = parseEnvelope(signatures);
  const inspected: InspectedPermit = {
    claims: { ...claims },
    signature: { mode: envelope.mode, kid: envelope.kid, envelope: signatures },
  };
  if (proof !== undefined) {
    const bytes = fromBase64Url(proof);
    if (!bytes) throw new PermitError('BAD_FORMAT', 'batch proof is not canonical base64url');
    const { count, index } = decodeProof(bytes);
    inspected.batch = { size: count, index, proof };
  }
  return inspected;
}
