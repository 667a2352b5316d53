import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readAuditLog, verifyAuditLog, type VerdictRecord } from '../../src/audit/index.ts';
import { key, openLog, tempDir } from './helpers.ts';

const dir = tempDir();
const TORN = '{"action":"fs.write_file","args":"partial wri';
const writer = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

/** Runs the writer until it has acknowledged `count` appends, then SIGKILLs it. */
async function runAndKill(logPath: string, keyPath: string, count: number, segmentBytes = 0): Promise<Map<number, string>> {
  const child = spawn(process.execPath, ['--import', 'tsx', writer, logPath, keyPath, '16', String(segmentBytes)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acked = new Map<number, string>();
  let buffered = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() as string;
    for (const line of parts) {
      const [seq, id] = line.split(' ');
      acked.set(Number(seq), id as string);
    }
    if (acked.size >= count && child.exitCode === null && !child.killed) child.kill('SIGKILL');
  });
  await exited;
  if (acked.size < count) throw new Error(`writer exited after ${acked.size} appends: ${stderr}`);
  return acked;
}

describe('crash safety', () => {
  it('keeps every acknowledged append across repeated SIGKILLs, cutting and recording torn tails', async () => {
    const logPath = join(dir, 'crash', 'audit.jsonl');
    const keyPath = join(dir, 'secret.key');
    writeFileSync(keyPath, key().toSecretBytes());
    const acked = new Map<number, string>();
    const rounds = [120, 900, 40, 400];
    for (let round = 0; round < rounds.length; round++) {
      // Rounds 3 and 4 rotate every ~24 kB, so kills land around rotations too.
      const got = await runAndKill(logPath, keyPath, rounds[round] as number, round >= 2 ? 24_000 : 0);
      for (const [seq, id] of got) acked.set(seq, id);
      // The crashed log verifies as it lies (at most a torn last line, never counted).
      const crashed = await verifyAuditLog(logPath, key().publicKeys());
      expect(crashed.lastSeq).toBeGreaterThanOrEqual(Math.max(...got.keys()));
      // Round 2: the crash tore a write in half (a kill mid-write can; simulate it to be sure).
      if (round === 1) appendFileSync(logPath, TORN);
    }
    // Reopening recovers; closing seals.
    const log = await openLog(logPath, { mode: 'pq' });
    await log.close();
    const { records, report } = await readAuditLog(logPath, { keys: key().publicKeys() });
    expect(report.signaturesChecked).toBe(true);
    expect(report.unsealed).toBe(0);
    // At least the simulated tear; a kill can also tear a multi-page write for real.
    expect(report.recoveries).toBeGreaterThanOrEqual(1);
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    for (const [seq, id] of acked) {
      const rec = bySeq.get(seq) as VerdictRecord | undefined;
      expect(rec?.evaluationId, `acknowledged seq ${seq}`).toBe(id);
    }
    const cuts = records.filter((r) => r.type === 'recovery').map((r) => (r as { cutBytes: number }).cutBytes);
    expect(cuts.some((bytes) => bytes >= TORN.length)).toBe(true);
    expect(report.byType.verdict).toBeGreaterThanOrEqual(acked.size);
  }, 120_000);
});
