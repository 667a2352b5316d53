// The engine + crypto + audit public surface (`kavach`).
export * from './engine/index.ts';
