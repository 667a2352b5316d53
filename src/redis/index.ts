// `kavach/redis`: shared state for several gate replicas.
export { RedisRateStore, type RedisRateStoreOptions } from './rate-store.ts';
export { RedisSessionStore, type RedisSessionStoreOptions } from './session-store.ts';
export { RedisReplayStore, type RedisReplayStoreOptions } from './replay-store.ts';
export { RedisApprovalStore, type RedisApprovalStoreOptions } from './approval-store.ts';
export { RedisAuditAnchor, type RedisAuditAnchorOptions } from './audit-anchor.ts';
export { RedisInvalidationBus, type RedisInvalidationBusOptions } from './invalidation-bus.ts';
export { keyPairSigner, keysVerifier, type BusSigner, type BusVerifier, type BusVerificationKeys } from './signing.ts';
export { failFastOptions as failFastRedisOptions, type RedisClientOrUrl, type RedisStoreOptions } from './connection.ts';
