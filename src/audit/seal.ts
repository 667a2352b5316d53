import { readFile } from 'node:fs/promises';
import { parseRecord } from './chain.ts';
import { AuditError } from './errors.ts';
import { sealPath, writeFileAtomic } from './files.ts';
import type { CheckpointRecord } from './record.ts';

/**
 * PATH.seal: a copy of the latest durable checkpoint, written after it is on disk. A log cut back
 * behind that checkpoint no longer contains it, which verification reports as TRUNCATED. (An
 * attacker who can delete the seal file too is only caught by a checkpoint kept elsewhere: pass it
 * as `anchor` to verifyAuditLog.)
 */
export async function readSeal(logPath: string): Promise<CheckpointRecord | undefined> {
  let text: string;
  try {
    text = await readFile(sealPath(logPath), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseAnchor(text.trimEnd(), sealPath(logPath));
}

export function parseAnchor(line: string, name: string): CheckpointRecord {
  let record: ReturnType<typeof parseRecord>;
  try {
    record = parseRecord(line, -1, { file: name, line: 1 });
  } catch (err) {
    throw new AuditError('ANCHOR_MISMATCH', -1, `the seal ${name} is damaged: ${(err as AuditError).reason ?? String(err)}`);
  }
  if (record.type !== 'checkpoint') throw new AuditError('ANCHOR_MISMATCH', -1, `the seal ${name} is not a checkpoint record`);
  return record as CheckpointRecord;
}

export async function writeSeal(logPath: string, checkpointLine: string): Promise<void> {
  await writeFileAtomic(sealPath(logPath), `${checkpointLine}\n`);
}
