import { KavachError } from '../engine/errors.ts';

/**
 * Why an audit log failed verification, or why the log cannot be written. `index` is the 0-based
 * position of the offending record in the whole chain (equal to its `seq` in an intact log), or -1
 * when the problem is not one record (a missing file, a failed disk).
 */
export type AuditErrorCode =
  | 'BAD_RECORD' // not JSON, or a field missing or of the wrong type
  | 'NOT_CANONICAL' // content hashes right but the line is not the canonical encoding (e.g. a duplicate key)
  | 'HASH_MISMATCH' // a field was edited: the record's hash does not match its content
  | 'REWRITTEN' // a record was edited and re-hashed: the next record links to the original
  | 'FORGED' // a record was replaced by one that does not link to the chain
  | 'INSERTED' // an extra record sits in the chain
  | 'DROPPED' // records are missing
  | 'REORDERED' // records are out of order
  | 'SPLICED' // a record from another log
  | 'CHAIN_BROKEN' // the link to the previous record is wrong and no better explanation fits
  | 'BAD_START' // the log does not begin with its genesis record
  | 'BAD_CHECKPOINT' // a checkpoint's signed fields disagree with the chain
  | 'BAD_SIGNATURE' // a checkpoint's signature does not verify
  | 'WRONG_KEY' // a checkpoint was signed by a key the verifier does not know
  | 'MODE_MISMATCH' // hybrid and PQ-only signatures mixed, or not the mode asked for
  | 'TRUNCATED' // records behind a known checkpoint are gone
  | 'ANCHOR_MISMATCH' // the seal file or the anchor names a checkpoint the log does not contain (or holds differently)
  | 'UNANCHORED' // verify: the anchor holds no checkpoint of this log
  | 'ANCHOR_UNAVAILABLE' // the anchor could not be reached (verify: nothing was checked; append: held until it can)
  | 'UNSEALED' // verify (requireSealed): records no checkpoint seals, or none the anchor holds
  | 'BAD_ENTRY' // append: the entry is not a valid record
  | 'RECORD_TOO_LARGE' // append: the entry encodes to more than the limit
  | 'LOCKED' // open: another writer holds the log
  | 'NOT_FOUND' // no log at that path
  | 'LOG_FAILED' // a write, fsync or signature failed: the log takes no more appends
  | 'LOG_CLOSED'; // append after close

export class AuditError extends KavachError {
  declare readonly code: AuditErrorCode;
  readonly index: number;
  readonly reason: string;
  /** The file and 1-based line, when the problem is one line of one file. */
  readonly file?: string;
  readonly line?: number;

  constructor(code: AuditErrorCode, index: number, reason: string, where?: { file?: string; line?: number; cause?: unknown }) {
    const at = where?.file !== undefined ? ` (${where.file}${where.line !== undefined ? ` line ${where.line}` : ''})` : '';
    super(
      code,
      index >= 0 ? `audit record ${index}: ${reason}${at}` : `${reason}${at}`,
      where?.cause !== undefined ? { cause: where.cause } : undefined,
    );
    this.index = index;
    this.reason = reason;
    if (where?.file !== undefined) this.file = where.file;
    if (where?.line !== undefined) this.line = where.line;
  }
}
