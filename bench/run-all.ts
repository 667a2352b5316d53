/**
 * `npm run bench`: builds, then runs every benchmark in bench/, one after the other (they share
 * two cores, so never in parallel), each in its own process. Prints each one's table and its wall
 * time. The benchmarks import the built dist/ (what users run); only their own code runs via tsx.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ORDER = ['evaluate', 'crypto', 'audit', 'redis', 'proxy'];
// soak.ts is minutes of load with faults, not a measurement: `npm run bench:soak` runs it.
const found = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !['util.ts', 'run-all.ts', 'soak.ts'].includes(f))
  .map((f) => f.slice(0, -3));
const names = [...ORDER.filter((n) => found.includes(n)), ...found.filter((n) => !ORDER.includes(n)).sort()];
const only = process.argv.slice(2);

let failed = 0;
for (const name of names) {
  if (only.length > 0 && !only.includes(name)) continue;
  const started = Date.now();
  process.stdout.write(`\n=== bench/${name}.ts\n`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(here, `${name}.ts`)], { stdio: 'inherit' });
  process.stdout.write(`(${name}: ${((Date.now() - started) / 1000).toFixed(1)} s, exit ${result.status})\n`);
  if (result.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
