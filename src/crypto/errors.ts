import { KavachError } from '../engine/errors.ts';

/** Why a signature, permit token or key manifest was refused. Codes are stable: callers branch on them. */
export type PermitErrorCode =
  | 'BAD_FORMAT'
  | 'BAD_SIGNATURE'
  | 'ALG_MISMATCH'
  | 'UNKNOWN_KEY'
  | 'KEY_EXPIRED'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'WRONG_AUDIENCE'
  /** The caller expected another principal than the permit's `sub`. */
  | 'WRONG_PRINCIPAL'
  /** The caller expected another session than the permit's `sid` (or the permit names none). */
  | 'WRONG_SESSION'
  | 'WRONG_ACTION'
  | 'ARGS_MISMATCH'
  | 'REPLAYED'
  /** The replay store failed: fail closed rather than accept a possibly replayed permit. */
  | 'REPLAY_CHECK_FAILED'
  /** A key manifest older than (or conflicting with) the one a directory already holds. */
  | 'ROLLBACK';

export class PermitError extends KavachError {
  declare readonly code: PermitErrorCode;
  constructor(code: PermitErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, `[${code}] ${message}`, options);
  }
}

export type ChannelErrorCode =
  | 'BAD_FORMAT'
  | 'WRONG_RECIPIENT'
  | 'UNKNOWN_SENDER'
  | 'WRONG_CONTEXT'
  | 'STALE'
  | 'DECRYPT_FAILED'
  | 'BAD_SIGNATURE'
  /** The sender signed in the other mode (hybrid vs PQ-only) than this channel requires. */
  | 'ALG_MISMATCH'
  | 'REPLAYED'
  /** Every slot of the replay cache holds a nonce still inside the window: refuse, never forget one. */
  | 'REPLAY_CACHE_FULL'
  /** The sender's key (open, and seal with our own key) or the recipient's key (seal) is past its expiry. */
  | 'KEY_EXPIRED';

export class ChannelError extends KavachError {
  declare readonly code: ChannelErrorCode;
  constructor(code: ChannelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, `[${code}] ${message}`, options);
  }
}

export type KeyFileErrorCode =
  | 'KEY_FILE_CORRUPT'
  | 'WRONG_PASSPHRASE'
  | 'PASSPHRASE_REQUIRED'
  | 'KEY_FILE_NOT_ENCRYPTED'
  | 'KEY_FILE_PERMISSIONS'
  | 'KEY_FILE_UNREADABLE';

export class KeyFileError extends KavachError {
  declare readonly code: KeyFileErrorCode;
  constructor(code: KeyFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, `[${code}] ${message}`, options);
  }
}
