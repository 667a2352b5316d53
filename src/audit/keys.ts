import type { PublicKeyDirectory } from '../crypto/key-directory.ts';
import type { KeyPair, PublicKeyBundle } from '../crypto/keys.ts';
import { signEnvelope, verifyEnvelope, type SignatureMode } from '../crypto/signatures.ts';
import { isCheckpointSigner, isCheckpointVerifier, type CheckpointSigner, type CheckpointVerifier } from './checkpoint.ts';

/** How a log gets its checkpoint key: a Kavach KeyPair and mode, or any CheckpointSigner. */
export interface KeyOptions {
  keyPair?: KeyPair;
  /** Default 'hybrid' (ML-DSA-65 + Ed25519); 'pq' is ML-DSA-65 alone. */
  mode?: SignatureMode;
  signer?: CheckpointSigner;
}

/** What verification accepts: a public key bundle, a key directory, or any CheckpointVerifier. */
export type AuditKeys = PublicKeyBundle | PublicKeyDirectory | CheckpointVerifier;

export async function resolveSigner(opts: KeyOptions): Promise<CheckpointSigner> {
  if (opts.signer !== undefined) {
    if (opts.keyPair !== undefined) throw new TypeError('AuditLog.open: pass keyPair or signer, not both');
    if (!isCheckpointSigner(opts.signer)) throw new TypeError('AuditLog.open: signer needs mode, kid and sign()');
    return opts.signer;
  }
  if (opts.keyPair === undefined) throw new TypeError('AuditLog.open: a keyPair is required to sign checkpoints');
  return checkpointSignerFrom(opts.keyPair, opts.mode ?? 'hybrid');
}

/** Signs checkpoints with a Kavach key pair (not the Redis bus's `keyPairSigner`: another domain, another shape). */
export function checkpointSignerFrom(kp: KeyPair, mode: SignatureMode): CheckpointSigner {
  if (mode !== 'hybrid' && mode !== 'pq') throw new TypeError(`mode must be 'hybrid' or 'pq', not ${String(mode)}`);
  const publicKeys = kp.publicKeys();
  return {
    mode,
    kid: kp.kid,
    expiresAt: kp.expiresAt,
    sign: (domain, message) => signEnvelope(kp, mode, domain, message),
    verifier: checkpointVerifierFrom(publicKeys),
  };
}

/** Verifies checkpoints against a bundle, a directory, or passes a CheckpointVerifier through. */
export function checkpointVerifierFrom(keys: AuditKeys): CheckpointVerifier {
  if (isCheckpointVerifier(keys)) return keys;
  return {
    verifyCheckpoint: (mode, domain, message, envelope, now) => verifyEnvelope(keys, mode, domain, message, envelope, { now }),
  };
}
