import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/audit.ts';
import { buildAuditReport } from '../../src/audit/report/index.ts';
import { sealRecord } from '../../src/audit/record.ts';
import { verifyAuditLog } from '../../src/audit/index.ts';
import { auditRejection, key, lines, openLog, parse, tempDir, verdict, writeLines } from './helpers.ts';

const dir = tempDir();
const logPath = join(dir, 'audit.jsonl');
const keysPath = join(dir, 'public.json');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    return { code: await run(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

/**
 * A sealed log, then two records added to the file by someone without the key: chained correctly
 * (the chain is only SHA-256), so nothing but a checkpoint signature could tell them from the writer's.
 */
beforeAll(async () => {
  writeFileSync(keysPath, JSON.stringify(key().publicKeys()));
  const log = await openLog(logPath);
  await log.append(verdict({ principal: 'alice', action: 'fs.read_file' }));
  await log.close();
  const ls = lines(logPath);
  let prev = parse(ls.at(-1) as string);
  for (const action of ['bank.transfer', 'fs.rm']) {
    const { hash: _hash, ...last } = prev;
    const forged = sealRecord({
      type: 'verdict',
      seq: (last.seq as number) + 1,
      prev: prev.hash,
      log: last.log,
      time: (last.time as number) + 1,
      evaluationId: `forged-${action}`,
      principal: 'alice',
      kind: 'agent',
      action,
      verdict: 'permit',
      policy: 'reads',
      session: 's-1',
    });
    ls.push(forged.line);
    prev = parse(forged.line);
  }
  writeLines(logPath, ls);
});

describe('records after the last checkpoint (unsealed)', () => {
  it('are counted apart from the sealed ones, and requireSealed fails on the first of them', async () => {
    const report = await verifyAuditLog(logPath, key().publicKeys());
    expect(report).toMatchObject({ records: 5, unsealed: 2, lastCheckpoint: { seq: 2 } });
    const err = await auditRejection(verifyAuditLog(logPath, key().publicKeys(), { requireSealed: true }));
    expect(err.code).toBe('UNSEALED');
    expect(err.index).toBe(3);
    expect(err.reason).toBe(
      '2 records (seq 3..4) are after the last checkpoint: hash-chained only, so anyone able to write the file could have added them',
    );
  });

  it('kavach audit verify says they are unsealed; --strict fails on them (exit 1)', async () => {
    const plain = await cli('verify', logPath, '--keys', keysPath);
    expect(plain.code).toBe(0);
    expect(plain.out).toContain(
      '2 records UNSEALED (after the last checkpoint: hash-chained only, anyone able to write the file could have added them)',
    );
    const strict = await cli('verify', logPath, '--keys', keysPath, '--strict');
    expect(strict.code).toBe(1);
    expect(strict.out).toContain(`${logPath}: FAILED at record 3 [UNSEALED] 2 records (seq 3..4) are after the last checkpoint`);
  });

  it('kavach audit verify --strict passes a log whose every record is sealed', async () => {
    const sealed = join(dir, 'sealed.jsonl');
    const log = await openLog(sealed);
    await log.append(verdict());
    await log.close();
    const r = await cli('verify', sealed, '--keys', keysPath, '--strict');
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain('nothing unsealed');
  });

  it('kavach audit verify states what a local seal does and does not prove', async () => {
    const r = await cli('verify', logPath, '--keys', keysPath);
    expect(r.out).toContain(
      'local seal only: shows the records are unchanged since the key sealed them; it cannot show the log was not cut back to an earlier checkpoint',
    );
  });

  it('kavach audit show marks each of them [UNSEALED] (and "sealed": false with --json), and the sealed ones not', async () => {
    const r = await cli('show', logPath);
    const shown = r.out.split('\n');
    const line = (action: string) => shown.find((l) => l.includes(action)) as string;
    expect(line('bank.transfer')).toMatch(/PERMIT +alice \(agent\) +bank\.transfer.*\[UNSEALED\]$/);
    expect(line('fs.rm')).toMatch(/\[UNSEALED\]$/);
    expect(line('fs.read_file')).not.toContain('UNSEALED');
    expect(r.out).toContain('-- 5 of 5 records shown; chain intact; signatures not checked (pass --keys); 2 records UNSEALED');

    const json = await cli('show', logPath, '--json');
    const records = json.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; sealed: boolean });
    expect(records.map((x) => [x.seq, x.sealed])).toEqual([
      [0, true],
      [1, true],
      [2, true],
      [3, false],
      [4, false],
    ]);
  });

  it('kavach audit show marks them when a filter shows only some records', async () => {
    const r = await cli('show', logPath, '--verdict', 'permit', '--keys', keysPath);
    const shown = r.out
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('--'));
    expect(shown.map((l) => l.endsWith('[UNSEALED]'))).toEqual([false, true, true]);
  });

  it('kavach audit stats says how many are unsealed', async () => {
    const r = await cli('stats', logPath);
    expect(r.out).toMatch(/checkpoints +1, last at seq 2 .*; 2 records UNSEALED \(after the last checkpoint/);
  });

  it('the HTML report marks them unsealed', async () => {
    const { model } = await buildAuditReport([logPath], key().publicKeys());
    expect(model.integrity.logs[0]).toMatchObject({ unsealed: 2 });
    expect(model.rows.map((row) => [row.seq, row.trust])).toEqual([
      [0, 'sealed'],
      [1, 'sealed'],
      [2, 'sealed'],
      [3, 'unsealed'],
      [4, 'unsealed'],
    ]);
    expect(model.integrity.headline).toContain('2 records after the last checkpoint not yet sealed');
  });
});
