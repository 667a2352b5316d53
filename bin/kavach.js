#!/usr/bin/env node
// In a source checkout (src/ present) run the TypeScript directly through tsx; a published
// package runs the compiled dist/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
let entry;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = source;
} else {
  entry = join(root, 'dist', 'cli', 'main.js');
}
const { main, quietOnClosedPipe } = await import(pathToFileURL(entry).href);
quietOnClosedPipe(process.argv[2]);
process.exitCode = await main(process.argv.slice(2));
