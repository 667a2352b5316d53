import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditError, verifyAuditLog, type AuditLog } from '../../src/audit/index.ts';
import { sealRecord } from '../../src/audit/record.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory } from '../../src/crypto/key-directory.ts';
import { key, lines, openLog, parse, tempDir, verdict, writeLines, writeLog } from './helpers.ts';

const dir = tempDir();
let files = 0;
const fresh = (): string => join(dir, `log-${++files}.jsonl`);

async function openFailure(path: string, opts = {}): Promise<AuditError> {
  let log: AuditLog | undefined;
  try {
    log = await openLog(path, opts);
  } catch (err) {
    if (err instanceof AuditError) return err;
    throw err;
  }
  await log.close();
  throw new Error('opened');
}

describe('reopening a log', () => {
  it('resumes the chain where it left off', async () => {
    const path = fresh();
    await writeLog(path, 5);
    const log = await openLog(path);
    expect(log.size).toBe(lines(path).length);
    const rec = await log.append(verdict());
    await log.close();
    expect(rec.seq).toBe(7);
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.byVerdict.permit).toBe(5);
    expect(report.byType.genesis).toBe(1);
  });

  it('cuts a torn last line and records the cut', async () => {
    const path = fresh();
    await writeLog(path, 5);
    const fragment = '{"action":"fs.read_file","args":"abc","evaluationId":"torn';
    appendFileSync(path, fragment);
    const log = await openLog(path);
    await log.close();
    const recovery = lines(path)
      .map(parse)
      .find((r) => r.type === 'recovery');
    expect(recovery).toMatchObject({ cutBytes: fragment.length, file: basename(path) });
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.recoveries).toBe(1);
    expect(report.tornTail).toBeUndefined();
  });

  it('cuts zero-filled blocks left by a power loss', async () => {
    const path = fresh();
    await writeLog(path, 3);
    appendFileSync(path, Buffer.concat([Buffer.alloc(300), Buffer.from('\n'), Buffer.alloc(200)]));
    const log = await openLog(path);
    await log.close();
    expect(
      lines(path)
        .map(parse)
        .find((r) => r.type === 'recovery')?.cutBytes,
    ).toBe(501);
    await verifyAuditLog(path, key().publicKeys());
  });

  it('refuses to extend a tail that fails verification, and leaves the lock free', async () => {
    const path = fresh();
    const ls = await writeLog(path, 5);
    ls[3] = (ls[3] as string).replace('"verdict":"permit"', '"verdict":"refuse"');
    writeLines(path, ls);
    const err = await openFailure(path);
    expect(err.code).toBe('HASH_MISMATCH');
    expect(err.index).toBe(3);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('refuses a log cut back behind its sealed checkpoint', async () => {
    const path = fresh();
    const ls = await writeLog(path, 12, { checkpointEvery: { entries: 5 } });
    const firstCp = ls.findIndex((l) => parse(l).type === 'checkpoint');
    writeLines(path, ls.slice(0, firstCp + 1));
    const err = await openFailure(path);
    expect(err.code).toBe('TRUNCATED');
  });

  it('refuses a tail that fails without cutting anything: a sealed checkpoint that lost its newline stays', async () => {
    const path = fresh();
    await writeLog(path, 3);
    const whole = readFileSync(path);
    writeFileSync(path, whole.subarray(0, whole.length - 1));
    const err = await openFailure(path);
    expect(err.code).toBe('TRUNCATED');
    expect(readFileSync(path).length).toBe(whole.length - 1);
    // The evidence survived the refused open: restoring the newline makes the log whole again.
    appendFileSync(path, '\n');
    await verifyAuditLog(path, key().publicKeys());
  });

  it('keeps its own records in order when one of them makes a checkpoint fall due on reopen', async () => {
    const path = fresh();
    const ls = await writeLog(path, 2, { checkpointEvery: { entries: 100 } });
    // A crash before the first checkpoint: genesis and two verdicts unsealed, and a torn line.
    writeLines(path, ls.slice(0, -1));
    rmSync(`${path}.seal`);
    appendFileSync(path, '{"torn":');
    // The recovery record is the 4th unsealed one (a checkpoint falls due); resume and key records follow it.
    const next = KeyPair.generate();
    const log = await openLog(path, { keyPair: next, checkpointEvery: { entries: 4 } });
    await log.close();
    const types = lines(path).map((l) => parse(l).type);
    expect(types.slice(3)).toEqual(['recovery', 'checkpoint', 'resume', 'key', 'checkpoint']);
    await verifyAuditLog(path, PublicKeyDirectory.inMemory([key().publicKeys(), next.publicKeys()]));
  });

  it('names records it found unsealed on reopen: lines added while no writer held the log are not silently sealed', async () => {
    const path = fresh();
    const ls = await writeLog(path, 3);
    const last = parse(ls.at(-1) as string);
    // Someone with write access adds a well-chained record while the log is closed.
    const forged = sealRecord({
      type: 'verdict',
      time: 1,
      evaluationId: 'forged',
      principal: 'mallory',
      verdict: 'permit',
      seq: (last.seq as number) + 1,
      prev: last.hash,
      log: last.log,
    });
    appendFileSync(path, `${forged.line}\n`);
    const log = await openLog(path);
    await log.append(verdict());
    await log.close();
    const resume = lines(path)
      .map(parse)
      .find((r) => r.type === 'resume');
    expect(resume).toMatchObject({ from: (last.seq as number) + 1, unsealed: 1 });
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.resealed).toBe(1);
    expect(report.unsealed).toBe(0);
  });

  it('refuses to start afresh where a sealed log was removed', async () => {
    const path = fresh();
    await writeLog(path, 2);
    rmSync(path);
    const err = await openFailure(path);
    expect(err.code).toBe('TRUNCATED');
    expect(err.message).toMatch(/seal file/);
  });

  it('refuses to continue a hybrid log in PQ-only mode', async () => {
    const path = fresh();
    await writeLog(path, 2);
    expect((await openFailure(path, { mode: 'pq' })).code).toBe('MODE_MISMATCH');
  });

  it('records a change of checkpoint key, and verifies with both keys', async () => {
    const path = fresh();
    await writeLog(path, 2);
    const next = KeyPair.generate();
    const log = await openLog(path, { keyPair: next });
    await log.append(verdict());
    await log.close();
    const keyRecord = lines(path)
      .map(parse)
      .find((r) => r.type === 'key');
    expect(keyRecord).toMatchObject({ event: 'audit_key_changed', kid: next.kid });
    const report = await verifyAuditLog(path, PublicKeyDirectory.inMemory([key().publicKeys(), next.publicKeys()]));
    expect(report.kids.sort()).toEqual([key().kid, next.kid].sort());
    const err = await verifyAuditLog(path, next.publicKeys()).catch((e: AuditError) => e);
    expect(err).toBeInstanceOf(AuditError);
    expect((err as AuditError).code).toBe('WRONG_KEY');
  });
});

describe('one writer per log', () => {
  it('refuses a second writer with a clear error', async () => {
    const path = fresh();
    const first = await openLog(path);
    const err = await openFailure(path);
    expect(err.code).toBe('LOCKED');
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.message).toMatch(/one writer per log/);
    await first.close();
    const again = await openLog(path);
    await again.close();
  });

  it('refuses a second writer that names the log through a symlink, and verifies through one with its seal', async () => {
    const path = fresh();
    const first = await openLog(path);
    const link = `${path}-link.jsonl`;
    symlinkSync(path, link);
    const err = await openFailure(link);
    expect(err.code).toBe('LOCKED');
    await first.append(verdict());
    await first.close();
    const report = await verifyAuditLog(link, key().publicKeys());
    expect(report.anchored).toBe(true);
  });

  it('refuses when another live process holds the lock', async () => {
    const path = fresh();
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 1, host: hostname(), since: Date.now() }));
    const err = await openFailure(path);
    expect(err.code).toBe('LOCKED');
    expect(err.message).toContain('pid 1 ');
    rmSync(`${path}.lock`);
  });

  it('takes over a stale lock left by a dead process', async () => {
    const path = fresh();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: dead, host: hostname(), since: Date.now() - 1000 }));
    const log = await openLog(path);
    await log.append(verdict());
    await log.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('lets exactly one of two racing openers take over a stale lock', async () => {
    const path = fresh();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: dead, host: hostname(), since: Date.now() - 1000 }));
    const results = await Promise.allSettled([openLog(path), openLog(path), openLog(path)]);
    const opened = results.filter((r): r is PromiseFulfilledResult<AuditLog> => r.status === 'fulfilled');
    expect(opened).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as AuditError).code).toBe('LOCKED');
    await opened[0]?.value.close();
  });
});

describe('size-based rotation', () => {
  async function rotated(): Promise<string> {
    const sub = join(dir, `rot-${++files}`);
    const path = join(sub, 'audit.jsonl');
    const log = await openLog(path, { maxSegmentBytes: 6_000, checkpointEvery: { entries: 1_000_000, ms: 3_600_000 } });
    for (let i = 0; i < 6; i++) await Promise.all(Array.from({ length: 10 }, () => log.append(verdict())));
    await log.close();
    return path;
  }

  it('rotates into segments that verify as one chain, each sealed by a checkpoint', async () => {
    const path = await rotated();
    const segments = readdirSync(join(path, '..'))
      .filter((f) => /^audit\.jsonl\.\d{6}$/.test(f))
      .sort();
    expect(segments.length).toBeGreaterThanOrEqual(2);
    for (const s of segments) expect(parse(lines(join(path, '..', s)).at(-1) as string).type).toBe('checkpoint');
    expect(parse(lines(path)[0] as string)).toMatchObject({ type: 'segment', segment: segments.length + 1 });
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.files.length).toBe(segments.length + 1);
    expect(report.byVerdict.permit).toBe(60);
    expect(report.firstSeq).toBe(0);
  });

  it('closes sealed even when the final checkpoint finds the segment full, and rotates on reopen', async () => {
    const path = fresh();
    const opts = { maxSegmentBytes: 3_000, checkpointEvery: { entries: 1_000, ms: Infinity } };
    const log = await openLog(path, opts);
    await Promise.all(Array.from({ length: 12 }, () => log.append(verdict({ args: { pad: 'x'.repeat(300) } }))));
    await log.close();
    expect((await verifyAuditLog(path, key().publicKeys())).unsealed).toBe(0);
    expect(parse(lines(path).at(-1) as string).type).toBe('checkpoint');
    const again = await openLog(path, opts);
    await again.append(verdict());
    await again.close();
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.unsealed).toBe(0);
    expect(parse(lines(path)[0] as string).type).toBe('segment');
  });

  it('names the gap when a middle segment is missing, and the start when the first is', async () => {
    const path = await rotated();
    rmSync(`${path}.000002`);
    const gap = await verifyAuditLog(path, key().publicKeys()).catch((e: AuditError) => e);
    expect((gap as AuditError).code).toBe('DROPPED');
    const path2 = await rotated();
    rmSync(`${path2}.000001`);
    expect(((await verifyAuditLog(path2, key().publicKeys()).catch((e: AuditError) => e)) as AuditError).code).toBe('BAD_START');
    // One segment on its own verifies when asked to accept a partial chain.
    const lone = await verifyAuditLog([`${path2}.000002`], key().publicKeys(), { partial: true });
    expect(lone.firstSeq).toBeGreaterThan(0);
  });

  it('resumes after a crash between rotating a segment and creating the next', async () => {
    const path = await rotated();
    const segs = readdirSync(join(path, '..'))
      .filter((f) => /^audit\.jsonl\.\d{6}$/.test(f))
      .sort();
    // Drop the active file: as if the process died right after the rename.
    rmSync(path);
    rmSync(`${path}.seal`);
    const last = lines(join(path, '..', segs.at(-1) as string));
    const log = await openLog(path, { maxSegmentBytes: 6_000 });
    const rec = await log.append(verdict());
    await log.close();
    expect(rec.seq).toBe((parse(last.at(-1) as string).seq as number) + 2);
    expect(parse(lines(path)[0] as string).type).toBe('segment');
    await verifyAuditLog(path, key().publicKeys());
  });

  it('continues a rotated log on reopen', async () => {
    const path = await rotated();
    const log = await openLog(path, { maxSegmentBytes: 6_000 });
    await Promise.all(Array.from({ length: 30 }, () => log.append(verdict())));
    await log.close();
    expect((await verifyAuditLog(path, key().publicKeys())).byVerdict.permit).toBe(90);
  });
});
