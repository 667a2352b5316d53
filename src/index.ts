// The engine + crypto + audit public surface (`kavach`).
export * from './engine/index.ts';
export * from './crypto/index.ts';
export * from './audit/index.ts';
