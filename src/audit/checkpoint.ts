import type { CheckpointMode } from './record.ts';

/**
 * What the log needs from a key to seal checkpoints. The crypto module's KeyPair is adapted to
 * this (see keys.ts); tests and embedders may pass their own.
 */
export interface CheckpointSigner {
  readonly mode: CheckpointMode;
  readonly kid: string;
  sign(domain: string, message: Uint8Array): Promise<string>;
  /** ms since epoch after which the key must not sign (a verifier would refuse the checkpoint). */
  readonly expiresAt?: number | undefined;
  /** Checks the log's own checkpoints on open (optional: without it only the chain is checked). */
  readonly verifier?: CheckpointVerifier;
}

/** What verification needs: check one checkpoint envelope, signed at `now` (ms). */
export interface CheckpointVerifier {
  verifyCheckpoint(mode: CheckpointMode, domain: string, message: Uint8Array, envelope: string, now: number): Promise<{ kid: string }>;
}

export function isCheckpointVerifier(x: unknown): x is CheckpointVerifier {
  return typeof (x as { verifyCheckpoint?: unknown })?.verifyCheckpoint === 'function';
}

export function isCheckpointSigner(x: unknown): x is CheckpointSigner {
  const s = x as Partial<CheckpointSigner> | undefined;
  return typeof s?.sign === 'function' && typeof s.kid === 'string' && (s.mode === 'hybrid' || s.mode === 'pq');
}
