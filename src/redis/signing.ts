import type { KeyPair, PublicKeyBundle } from '../crypto/keys.ts';
import { signEnvelope, verifyEnvelope, type SignatureMode } from '../crypto/signatures.ts';

/** Signs the bytes of a bus message. */
export interface BusSigner {
  sign(message: Uint8Array): Promise<string>;
}

/** Verifies a bus message's signature; rejects when it does not verify. */
export interface BusVerifier {
  verify(message: Uint8Array, signature: string): Promise<{ kid: string }>;
}

/** Domain tag for invalidation messages: a permit or audit signature never verifies as one. */
export const INVALIDATION_DOMAIN = 'redis/invalidation';

/** A public key, or a directory of them (PublicKeyDirectory). */
export type BusVerificationKeys = Parameters<typeof verifyEnvelope>[0];

/** Signs with the gate's key pair in the project's signature envelope (ML-DSA-65, + Ed25519 when hybrid). */
export function keyPairSigner(keyPair: KeyPair, mode: SignatureMode = 'hybrid'): BusSigner {
  return { sign: (message) => signEnvelope(keyPair, mode, INVALIDATION_DOMAIN, message) };
}

/** Accepts messages signed by any of `keys` (every replica's public key) in `mode`. */
export function keysVerifier(keys: BusVerificationKeys | PublicKeyBundle, mode: SignatureMode = 'hybrid'): BusVerifier {
  return { verify: (message, signature) => verifyEnvelope(keys, mode, INVALIDATION_DOMAIN, message, signature) };
}
