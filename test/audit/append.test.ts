import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import { type AuditError, AuditLog, verifyAuditLog, type AuditRecord, type VerdictRecord } from '../../src/audit/index.ts';
import type { CheckpointSigner } from '../../src/audit/checkpoint.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { auditRejection, key, lines, logNamer, openLog, parse, tempDir, verdict } from './helpers.ts';

const dir = tempDir();
const fresh = logNamer(dir);

describe('AuditLog.append', () => {
  it('maps a verdict to the DESIGN §8 record, chained to the one before', async () => {
    const path = fresh();
    const log = await openLog(path);
    const rec = (await log.append(
      verdict({
        verdict: 'refuse',
        code: 'POLICY_DENIED',
        evaluator: 'policy',
        reason: "'no-rm' refuses 'fs.rm'",
        policy: 'no-rm',
        action: 'fs.rm',
        args: { path: '/etc', force: true },
        session: 's-9',
        permit: undefined,
      }),
    )) as VerdictRecord;
    const permitted = (await log.append(verdict({ permit: 'jti-123' }))) as VerdictRecord;
    await log.close();
    expect(rec).toMatchObject({
      seq: 1,
      type: 'verdict',
      principal: 'agent-1',
      kind: 'agent',
      action: 'fs.rm',
      verdict: 'refuse',
      code: 'POLICY_DENIED',
      reason: "'no-rm' refuses 'fs.rm'",
      policy: 'no-rm',
      session: 's-9',
      args: hashArgs({ path: '/etc', force: true }),
    });
    expect(rec).not.toHaveProperty('argsValue');
    expect(permitted.permit).toBe('jti-123');
    expect(permitted.prev).toBe(rec.hash);
    const onDisk = lines(path).map(parse);
    expect(onDisk[1]).toEqual(rec);
    expect(onDisk[0]?.type).toBe('genesis');
    expect(onDisk.at(-1)?.type).toBe('checkpoint');
  });

  it('keeps argument values with recordArgs, minus the redact paths', async () => {
    const path = fresh();
    const log = await openLog(path, { recordArgs: true, redact: ['/password', '/auth/token', '/missing'] });
    const args = { user: 'alice', password: 'hunter2', auth: { token: 't0k', scheme: 'bearer' } };
    const rec = (await log.append(verdict({ args }))) as VerdictRecord;
    await log.close();
    expect(rec.argsValue).toEqual({ user: 'alice', auth: { scheme: 'bearer' } });
    expect(rec.redacted).toEqual(['/password', '/auth/token']);
    // No hash of the full arguments beside the rest of them: it would let a reader guess the secret.
    expect(rec.args).toBeUndefined();
    expect(readFileSync(path, 'utf8')).not.toContain(hashArgs(args));
    expect(args.password).toBe('hunter2');
    // As JSON strings: a checkpoint's base64url signature can contain "t0k" by chance.
    expect(readFileSync(path, 'utf8')).not.toMatch(/"hunter2"|"t0k"/);
  });

  it('redacts every named array element by its original index, and escaped keys (~0, ~1)', async () => {
    const path = fresh();
    const log = await openLog(path, { recordArgs: true, redact: ['/cards/0/pan', '/cards/1', '/pins/0', '/pins/1', '/a~1b', '/c~0d'] });
    const args = {
      cards: [
        { pan: 'PAN-ZERO', name: 'a' },
        { pan: 'PAN-ONE', name: 'b' },
        { pan: 'PAN-TWO', name: 'c' },
      ],
      pins: ['PIN-ZERO', 'PIN-ONE', 'public'],
      'a/b': 'SLASH-SECRET',
      'c~d': 'TILDE-SECRET',
      keep: 1,
    };
    const rec = (await log.append(verdict({ args }))) as VerdictRecord;
    await log.close();
    expect(rec.argsValue).toEqual({ cards: [{ name: 'a' }, { pan: 'PAN-TWO', name: 'c' }], pins: ['public'], keep: 1 });
    expect(rec.redacted).toEqual(['/cards/0/pan', '/cards/1', '/pins/0', '/pins/1', '/a~1b', '/c~0d']);
    expect(readFileSync(path, 'utf8')).not.toMatch(/PAN-ZERO|PAN-ONE|PIN-ZERO|PIN-ONE|SLASH-SECRET|TILDE-SECRET/);
  });

  it('records outcome and key events, and validates them', async () => {
    const log = await openLog(fresh());
    const outcome = await log.append({
      type: 'outcome',
      evaluationId: 'e-1',
      outcome: 'tool_error',
      durationMs: 12.5,
      error: 'ENOENT',
      action: 'fs.read_file',
    });
    const keyEvent = await log.append({ type: 'key', event: 'rotated', kid: 'abc', detail: 'scheduled' });
    expect(outcome).toMatchObject({ type: 'outcome', outcome: 'tool_error', durationMs: 12.5 });
    expect(keyEvent).toMatchObject({ type: 'key', event: 'rotated', kid: 'abc' });
    const bad = await auditRejection(log.append({ type: 'outcome', evaluationId: 'e-2', outcome: 'maybe', durationMs: 1 } as never));
    expect(bad.code).toBe('BAD_ENTRY');
    expect(bad.message).toMatch(/outcome/);
    expect(
      (await auditRejection(log.append({ type: 'outcome', evaluationId: 'e', outcome: 'ok', durationMs: 1, extra: 1 } as never))).code,
    ).toBe('BAD_ENTRY');
    await log.close();
  });

  it('accepts registered namespaced extension records and refuses unknown or reserved types', async () => {
    const log = await openLog(fresh(), { recordTypes: { 'myapp.approval': z.object({ approver: z.string(), ticket: z.number().int() }) } });
    const rec = await log.append({ type: 'myapp.approval', approver: 'bob', ticket: 42 });
    expect(rec).toMatchObject({ type: 'myapp.approval', approver: 'bob', ticket: 42 });
    expect((await auditRejection(log.append({ type: 'myapp.approval', approver: 7 } as never))).code).toBe('BAD_ENTRY');
    expect((await auditRejection(log.append({ type: 'other.thing', x: 1 }))).message).toMatch(/not registered/);
    expect((await auditRejection(log.append({ type: 'checkpoint' } as never))).message).toMatch(/written by the log itself/);
    expect((await auditRejection(log.append({ type: 'nonsense' } as never))).code).toBe('BAD_ENTRY');
    await log.close();
    const report = await verifyAuditLog(log.path, key().publicKeys());
    expect(report.byType['myapp.approval']).toBe(1);
  });

  it('records a verdict even when its strings are malformed or huge', async () => {
    const log = await openLog(fresh(), { recordArgs: true, maxRecordBytes: 4096 });
    const rec = (await log.append(verdict({ principal: 'bad\ud800id', args: { blob: 'x'.repeat(10_000) } }))) as VerdictRecord;
    expect(rec.principal).toBe('bad\ufffdid');
    expect(rec.argsValue).toBeUndefined();
    expect(rec.argsError).toMatch(/not recorded/);
    expect(rec.args).toBe(hashArgs({ blob: 'x'.repeat(10_000) }));
    await log.close();
    await verifyAuditLog(log.path, key().publicKeys());
  });

  it('group-commits concurrent appends: all durable, in call order, gap-free', async () => {
    const path = fresh();
    const log = await openLog(path, { checkpointEvery: { entries: 150 } });
    const recs = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(verdict({ evaluationId: `c-${i}` }))));
    // Resolved means on disk, before close.
    const onDisk = new Set(lines(path).map((l) => parse(l).evaluationId));
    for (const r of recs) expect(onDisk.has((r as VerdictRecord).evaluationId)).toBe(true);
    const verdicts = recs as VerdictRecord[];
    expect(verdicts.map((r) => r.evaluationId)).toEqual(Array.from({ length: 500 }, (_, i) => `c-${i}`));
    for (let i = 1; i < verdicts.length; i++) expect(verdicts[i]!.seq).toBeGreaterThan(verdicts[i - 1]!.seq);
    await log.close();
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.byVerdict.permit).toBe(500);
    expect(report.checkpoints).toBeGreaterThanOrEqual(4);
  });

  it('flush waits for what was appended before it, not for later appends', async () => {
    const path = fresh();
    const log = await openLog(path);
    const early = Array.from({ length: 50 }, () => log.append(verdict()));
    let stop = false;
    const flood = (async () => {
      while (!stop) await log.append(verdict());
    })();
    await log.flush();
    const flushedAt = lines(path).length;
    stop = true;
    await flood;
    const recs = await Promise.all(early);
    expect(flushedAt).toBeGreaterThanOrEqual((recs.at(-1)?.seq ?? 0) + 1);
    await log.close();
  });

  it('seals on the timer when records wait', async () => {
    const path = fresh();
    const log = await openLog(path, { checkpointEvery: { entries: 1_000_000, ms: 20 } });
    const record = await log.append(verdict());
    // Only the timer can seal here (a million entries never pass). Under load it may first seal the
    // genesis record alone, before the append is chained; the append is then sealed by a later tick.
    await vi.waitFor(() => expect(log.lastCheckpoint?.size).toBeGreaterThan(record.seq), { timeout: 10_000, interval: 10 });
    await log.close();
  });

  it('rejects appends after close, and a closed log verifies with nothing unsealed', async () => {
    const log = await openLog(fresh());
    await log.append(verdict());
    await log.close();
    expect((await auditRejection(log.append(verdict()))).code).toBe('LOG_CLOSED');
    expect((await verifyAuditLog(log.path, key().publicKeys())).unsealed).toBe(0);
  });

  it('fails closed when a checkpoint cannot be signed: waiting and later appends reject', async () => {
    let calls = 0;
    const signer: CheckpointSigner = {
      mode: 'pq',
      kid: 'test-kid',
      sign: async () => {
        calls++;
        throw new Error('HSM offline');
      },
    };
    const log = await AuditLog.open(fresh(), { signer, checkpointEvery: { entries: 3 } });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => log.append(verdict())));
    expect(calls).toBe(1);
    expect(results.some((r) => r.status === 'rejected')).toBe(true);
    const later = await auditRejection(log.append(verdict()));
    expect(later.code).toBe('LOG_FAILED');
    expect(later.message).toMatch(/HSM offline/);
    await log.close().catch(() => undefined);
  });

  it('tells onWarning once when the log fails, with the cause', async () => {
    const warnings: string[] = [];
    const signer: CheckpointSigner = {
      mode: 'pq',
      kid: 'test-kid',
      sign: async () => {
        throw new Error('HSM offline');
      },
    };
    const log = await AuditLog.open(fresh(), { signer, checkpointEvery: { entries: 2 }, onWarning: (m) => void warnings.push(m) });
    await Promise.allSettled(Array.from({ length: 4 }, () => log.append(verdict())));
    await auditRejection(log.append(verdict()));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/HSM offline/);
    await log.close().catch(() => undefined);
  });

  it('tells onWarning when the seal file cannot be written, and keeps logging', async () => {
    const path = fresh();
    let told: (message: string) => void = () => undefined;
    const warned = new Promise<string>((resolve) => (told = resolve));
    const log = await openLog(path, { onWarning: (m) => told(m) });
    // A directory where the seal file goes: the atomic rename onto it fails.
    mkdirSync(join(`${path}.seal`, 'in-the-way'), { recursive: true });
    await log.append(verdict());
    await log.checkpoint();
    expect(await warned).toMatch(/^could not write the audit seal file: /);
    await log.append(verdict());
    await log.close();
    expect(lines(path).map((l) => parse(l).type)).toEqual(['genesis', 'verdict', 'checkpoint', 'verdict', 'checkpoint']);
  });

  it('will not seal with an expired key: opening refuses, and a key that expires while open fails the log', async () => {
    const expired = KeyPair.generate({ now: Date.now() - 10_000, expiresInMs: 1_000 });
    await expect(openLog(fresh(), { keyPair: expired })).rejects.toThrow(/expired/);
    let now = Date.now();
    const soon = KeyPair.generate({ now, expiresInMs: 60_000 });
    const log = await openLog(fresh(), { keyPair: soon, clock: () => now });
    await log.append(verdict());
    now += 120_000;
    const err = await log.checkpoint().then(
      () => undefined,
      (e: AuditError) => e,
    );
    expect(err?.code).toBe('LOG_FAILED');
    expect(err?.message).toMatch(/expired/);
    await log.close().catch(() => undefined);
  });

  it('needs a key', async () => {
    await expect(AuditLog.open(fresh(), {})).rejects.toThrow(/keyPair/);
  });

  it('records are returned as written', async () => {
    const path = fresh();
    const log = await openLog(path);
    const rec: AuditRecord = await log.append({ type: 'policy_reload', time: 5, ok: false, policies: 3, error: 'bad' });
    await log.append({ type: 'invalidation', time: 6, scope: { type: 'session', sessionId: 's' }, reason: 'drift', remote: true });
    await log.close();
    expect(lines(path).map(parse)[1]).toEqual(rec);
    expect(lines(path).map(parse)[2]).toMatchObject({ type: 'invalidation', scope: { type: 'session', sessionId: 's' }, remote: true });
  });
});

describe('AuditLog.close called twice', () => {
  it('the second close resolves only once the log is sealed and unlocked, like the first', async () => {
    const path = fresh();
    const log = await openLog(path);
    await log.append(verdict());
    const first = log.close();
    await log.close();
    // A caller that awaited close() may exit now: the final checkpoint must already be on disk.
    expect(existsSync(`${path}.lock`)).toBe(false);
    expect(parse(lines(path).at(-1) as string).type).toBe('checkpoint');
    await first;
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.unsealed).toBe(0);
  });
});

describe('the record size limit (maxRecordBytes)', () => {
  it('is measured in bytes of the line, not in UTF-16 code units', async () => {
    const path = fresh();
    const log = await openLog(path, { recordArgs: true, maxRecordBytes: 4096 });
    // 3,000 characters, 9,000 bytes in UTF-8.
    const rec = (await log.append(verdict({ args: { note: '\u20ac'.repeat(3_000) } }))) as VerdictRecord;
    await log.close();
    expect(rec.argsValue).toBeUndefined();
    expect(rec.argsError).toMatch(/not recorded/);
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (parse(line || '{}').type === 'verdict') expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096);
    }
  });
});
