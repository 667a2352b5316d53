// The audit log: hash-chained JSON Lines, signed checkpoints, group-committed appends, verification.
export { AuditLog, type AuditLogOptions } from './audit-log.ts';
export { verifyAuditLog, readAuditLog, type AuditReport, type VerifyOptions, type Counts } from './verify.ts';
export { AuditError, type AuditErrorCode } from './errors.ts';
export type { AuditAnchor, AnchorCheckpoint, AnchoredCheckpoint, AnchorResult } from './anchor.ts';
export type { AnchorCheckReport } from './anchor-check.ts';
export type { AuditEntry, OutcomeEntry, KeyEntry, ExtensionEntry, RecordTypeSchema } from './entry.ts';
export type { CheckpointSigner, CheckpointVerifier } from './checkpoint.ts';
export type { AuditKeys, KeyOptions } from './keys.ts';
export {
  OUTCOMES,
  type AuditRecord,
  type AuditRecordType,
  type CoreRecord,
  type RecordHeader,
  type GenesisRecord,
  type VerdictRecord,
  type PolicyReloadRecord,
  type InvalidationRecord,
  type OutcomeRecord,
  type KeyRecord,
  type CheckpointRecord,
  type RecoveryRecord,
  type SegmentRecord,
  type ExtensionRecord,
  type ExtensionType,
  type Outcome,
  type CheckpointMode,
} from './record.ts';
export { APPROVAL_EVENTS, type ApprovalRecord, type ApprovalEventName } from './record.ts';
