import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { VerdictEvent } from '../../src/engine/ports.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { AuditError, AuditLog, type AuditLogOptions } from '../../src/audit/index.ts';

/** A temp directory removed after the file's tests. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kavach-audit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Names a new log file in `dir` on each call. */
export function logNamer(dir: string, prefix = 'log'): () => string {
  let files = 0;
  return () => join(dir, `${prefix}-${++files}.jsonl`);
}

/** The AuditError `p` rejects with; anything else (or resolving) fails the test. */
export async function auditRejection(p: Promise<unknown>): Promise<AuditError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuditError) return err;
    throw err;
  }
  throw new Error('resolved');
}

let keyCache: KeyPair | undefined;
/** One key pair per test file (ML-DSA key generation is not free). */
export function key(): KeyPair {
  keyCache ??= KeyPair.generate();
  return keyCache;
}

let n = 0;
export function verdict(overrides: Partial<VerdictEvent> = {}): VerdictEvent {
  n++;
  return {
    type: 'verdict',
    time: 1_770_000_000_000 + n,
    evaluationId: `eval-${n}`,
    principal: 'agent-1',
    principalKind: 'agent',
    action: 'fs.read_file',
    session: 'sess-1',
    verdict: 'permit',
    policy: 'reads',
    args: { path: `/work/file-${n}.txt` },
    ...overrides,
  };
}

export async function openLog(path: string, opts: Partial<AuditLogOptions> = {}): Promise<AuditLog> {
  return AuditLog.open(path, { keyPair: key(), mode: 'hybrid', ...opts });
}

/** Writes `count` verdicts, closes, returns the file's lines. */
export async function writeLog(path: string, count: number, opts: Partial<AuditLogOptions> = {}): Promise<string[]> {
  const log = await openLog(path, opts);
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      log.append(verdict({ verdict: i % 4 === 3 ? 'refuse' : 'permit', code: i % 4 === 3 ? 'NO_POLICY_MATCH' : undefined })),
    ),
  );
  await log.close();
  return lines(path);
}

export function lines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
}

export function writeLines(path: string, ls: readonly string[]): void {
  writeFileSync(path, ls.map((l) => `${l}\n`).join(''));
}

export function parse(line: string): Record<string, unknown> {
  return JSON.parse(line) as Record<string, unknown>;
}
