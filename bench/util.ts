import { readdirSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export function machine(): string {
  const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown cpu';
  return `Node ${process.version}, ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB`;
}

export function printTable(title: string, rows: [string, string][]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
}

/**
 * Benchmarks import the built dist/ (what users run), not src/. A source file changed after the
 * build would make the figures describe old code: say so (`npm run bench` builds first).
 */
function warnIfBuildIsStale(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  let built: number;
  try {
    built = statSync(join(root, 'dist', 'index.js')).mtimeMs;
  } catch {
    return; // no build at all: importing dist/ fails with its own message
  }
  const src = join(root, 'src');
  const newer = readdirSync(src, { recursive: true, encoding: 'utf8' }).find(
    (f) => f.endsWith('.ts') && statSync(join(src, f)).mtimeMs > built,
  );
  if (newer)
    process.stderr.write(`bench: src/${newer} changed after the last build, so these figures measure the old dist/ (npm run build)\n`);
}

warnIfBuildIsStale();
