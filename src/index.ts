// The public surface of `kavach`: the engine, crypto and audit names a user needs (DESIGN §4),
// each named here so that a new export is a deliberate change (test/public-surface.test.ts pins
// this list). The area indexes below name the same things; the test keeps the two in step.
export {
  Gate, type GateOptions,
  PRINCIPAL_KINDS, type PrincipalKind, type Principal, type GeoLocation, type ActionContext,
  REFUSE_CODES, type RefuseCode, type Verdict, type PermitVerdict, type RefuseVerdict, type InvalidateVerdict, type InvalidationScope,
  KavachError, PolicyError, ConfigError, RefusedError, InvalidatedError,
  InMemoryRateStore, InMemorySessionStore, InMemoryReplayStore, StoreUnavailableError,
  type RateStore, type RateCharge, type ChargeResult, type SessionStore, type SessionStoreOptions, type SessionState,
  type SessionObservation, type ObserveResult, type ReplayStore,
  InMemoryBus, type InvalidationBus, type InvalidationMessage,
  type PermitIssuer, type PermitRequest, type IssuedPermit, type AuditSink,
  type GateEvent, type VerdictEvent, type PolicyReloadEvent, type InvalidationEvent,
  formatRefusal, canonicalJson, hashArgs,
  type InvariantSpec, type DriftOptions,
  parsePolicyDocument, parsePolicyText, type PolicyFormat, type PolicySetSpec, type PolicySpec, type ConditionSpec,
  guarded, type GuardedOptions, type GuardedContext,
} from './engine/index.ts';
export {
  KeyPair, type PublicKeyBundle, type RawKeys, type KeyFileOptions,
  PermitError, ChannelError, KeyFileError, type PermitErrorCode, type ChannelErrorCode, type KeyFileErrorCode,
  type SignatureMode,
  PermitSigner, type PermitSignerOptions, type ExternalPermitSignerOptions, type BatchOptions, SigningPool, type SigningPoolOptions,
  PermitVerifier, type PermitVerifierOptions, type PermitExpectation, type PermitClaims, inspectPermitToken, type InspectedPermit,
  PublicKeyDirectory, buildSignedManifest, type SignedDirectoryOptions,
  SecureChannel, type SecureChannelOptions,
  cryptoBackend, type CryptoBackendInfo,
} from './crypto/index.ts';
export {
  AuditLog, type AuditLogOptions,
  verifyAuditLog, readAuditLog, type AuditReport, type VerifyOptions, type Counts,
  AuditError, type AuditErrorCode,
  type AuditEntry, type OutcomeEntry, type KeyEntry, type ExtensionEntry, type RecordTypeSchema,
  type CheckpointSigner, type CheckpointVerifier, type AuditKeys, type KeyOptions,
  OUTCOMES,
  type AuditRecord, type AuditRecordType, type CoreRecord, type RecordHeader, type GenesisRecord, type VerdictRecord,
  type PolicyReloadRecord, type InvalidationRecord, type OutcomeRecord, type KeyRecord, type CheckpointRecord,
  type RecoveryRecord, type SegmentRecord, type ExtensionRecord, type ExtensionType, type Outcome, type CheckpointMode,
} from './audit/index.ts';
