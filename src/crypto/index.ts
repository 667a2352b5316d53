// The crypto public surface: keys, signatures, permits, key directory, secure channel.
export { KeyPair, type PublicKeyBundle, type RawKeys } from './keys.ts';
export type { KeyFileOptions } from './key-file.ts';
export { PermitError, ChannelError, KeyFileError, type PermitErrorCode, type ChannelErrorCode, type KeyFileErrorCode } from './errors.ts';
export type { SignatureMode } from './signatures.ts';
export { PermitSigner, type PermitSignerOptions, type ExternalPermitSignerOptions } from './permit-signer.ts';
export type { BatchOptions } from './batch-signer.ts';
export { SigningPool, type SigningPoolOptions } from './signing-pool.ts';
export { PermitVerifier, type PermitVerifierOptions, type PermitExpectation } from './permit-verifier.ts';
export type { PermitClaims } from './permit-token.ts';
export { inspectPermitToken, type InspectedPermit } from './permit-inspect.ts';
export { PublicKeyDirectory, buildSignedManifest, type SignedDirectoryOptions } from './key-directory.ts';
export { SecureChannel, type SecureChannelOptions } from './secure-channel.ts';
export { cryptoBackend, type CryptoBackendInfo } from './backend.ts';
