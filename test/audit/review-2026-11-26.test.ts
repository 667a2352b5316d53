import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/audit.ts';
import { AuditError, verifyAuditLog, type AuditRecord, type VerdictRecord } from '../../src/audit/index.ts';
import { buildAuditReport, buildReportModel, writeAuditReport } from '../../src/audit/report/index.ts';
import { sealRecord } from '../../src/audit/record.ts';
import { auditRejection, key, lines, logNamer, openLog, parse, tempDir, verdict } from './helpers.ts';

const dir = tempDir();
const fresh = logNamer(dir);


describe('closing a log twice', () => {
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

describe('counting names that are also Object.prototype members', () => {
  it('counts principals, actions and sessions named constructor, __proto__ or toString like any other', async () => {
    const path = fresh();
    const log = await openLog(path);
    for (const name of ['constructor', '__proto__', 'toString', 'constructor']) {
      await log.append(verdict({ principal: name, action: name, session: name }));
    }
    await log.close();
    const report = await verifyAuditLog(path, key().publicKeys());
    const expected = [['__proto__', 1], ['constructor', 2], ['toString', 1]];
    for (const counts of [report.byPrincipal, report.byAction, report.bySession]) {
      expect(Object.entries(counts).sort()).toEqual(expected);
      expect(Object.entries(JSON.parse(JSON.stringify(counts)) as object).sort()).toEqual(expected);
    }
  });
});

describe('the record size limit', () => {
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

describe('bytes that are not UTF-8', () => {
  it('are refused at the index of their record, though they decode to the same text as the original bytes', async () => {
    const path = fresh();
    const log = await openLog(path);
    // A lone surrogate is recorded as U+FFFD (EF BF BD).
    await log.append(verdict({ reason: 'bad \ud800 input' }));
    await log.append(verdict());
    await log.close();
    const bytes = readFileSync(path);
    const at = bytes.indexOf(Buffer.from('\ufffd', 'utf8'));
    expect(at).toBeGreaterThan(0);
    // An invalid byte in its place decodes to U+FFFD as well: the hash still matches.
    const tampered = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at + 3)]);
    writeFileSync(path, tampered);
    const err = await auditRejection(verifyAuditLog(path, key().publicKeys()));
    expect(err.code).toBe('BAD_RECORD');
    expect(err.index).toBe(1);
    // A writer does not continue (and seal) a tail that fails verification.
    expect((await auditRejection(openLog(path))).code).toBe('BAD_RECORD');
    expect(readFileSync(path).equals(tampered)).toBe(true);
  });
});

describe('report totals keyed by recorded text', () => {
  it('count outcomes named like Object.prototype members', () => {
    const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h' };
    const records = ['constructor', '__proto__', 'ok', 'constructor'].map((outcome, seq) => (
      { ...header, seq, time: 1_000 + seq, type: 'outcome', evaluationId: `e${seq}`, outcome, durationMs: 1 }
    )) as unknown as AuditRecord[];
    const model = buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt: 0 });
    expect(Object.entries(model.summary.totals.outcomes).sort()).toEqual([['__proto__', 1], ['constructor', 2], ['ok', 1]]);
  });
});

describe('kavach audit --json on a terminal', () => {
  async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      return { code: await run(argv), out };
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  }

  it('writes C1 controls, bidi overrides and line separators in recorded text as \\u escapes, the same JSON', async () => {
    const path = fresh();
    const keysPath = `${path}.keys.json`;
    writeFileSync(keysPath, JSON.stringify(key().publicKeys()));
    // U+009B is CSI for a terminal decoding UTF-8 C1 controls: "erase line" and a forged verdict.
    const evil = 'x\u009b2K\u009b1Aforged PERMIT\u202e\u2028';
    const log = await openLog(path);
    await log.append(verdict({ principal: evil, session: evil, reason: evil }));
    await log.close();
    for (const argv of [['show', path, '--json'], ['stats', path, '--json'], ['verify', path, '--keys', keysPath, '--json']]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out, argv.join(' ')).not.toMatch(/[\u007f-\u009f\u202a-\u202e\u2028\u2029]/);
      expect(r.out).toContain('\\u009b2K');
    }
    const shown = JSON.parse((await cli('show', path, '--json', '--type', 'verdict')).out) as VerdictRecord;
    expect(shown.principal).toBe(evil);
  });
});

describe('kavach audit show on a chain-valid record of an unexpected shape', () => {
  it('prints an invalidation record without a scope instead of crashing, with or without filters', async () => {
    const path = fresh();
    const log = await openLog(path);
    await log.append(verdict({ principal: 'alice' }));
    await log.close();
    // Appended without the key (unsealed): the hash chain holds, the shape is not the writer's.
    const last = parse(lines(path).at(-1) as string);
    const odd = sealRecord({ type: 'invalidation', time: 5, reason: 'odd', remote: false, scope: null, seq: (last.seq as number) + 1, prev: last.hash, log: last.log });
    writeFileSync(path, `${readFileSync(path, 'utf8')}${odd.line}\n`);
    let out = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await run(['show', path])).toBe(0);
      expect(out).toMatch(/INVALIDATE.*odd/);
      expect(await run(['show', path, '--principal', 'alice'])).toBe(0);
      expect(await run(['show', path, '--session', 'sess-1'])).toBe(0);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  });
});

describe('report time axis', () => {
  it('is built for calls whose times span more than a double can hold (recorded time is any finite number)', () => {
    const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h' };
    const records = [-1.7e308, 1_770_000_000_000, 1.7e308].map((time, seq) => (
      { ...header, seq, time, type: 'verdict', evaluationId: `e${seq}`, principal: 'p', verdict: 'permit' }
    )) as unknown as AuditRecord[];
    const model = buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt: 0 });
    const buckets = model.summary.verdictsOverTime;
    expect(buckets.length).toBeGreaterThan(0);
    expect(buckets.length).toBeLessThanOrEqual(49);
    expect(buckets.reduce((n, b) => n + b.permit, 0)).toBe(3);
    expect(Number.isFinite(model.summary.bucketMs)).toBe(true);
  });
});

describe.skipIf(!existsSync('/usr/bin/chromium') && process.env.CI !== 'true')('report page with calls whose times span more than a double holds', () => {
  it('renders every session lane without a script error', async () => {
    const { chromium } = await import('playwright-core');
    const path = fresh();
    const log = await openLog(path);
    // Recorded times are any finite number the caller passed: one session of 45 calls spanning them.
    const times = [-1.7e308, 1.7e308, ...Array.from({ length: 43 }, (_, i) => 1_770_000_000_000 + i)];
    for (const time of times) await log.append(verdict({ session: 'wide', time }));
    await log.close();
    const html = join(dir, 'wide.html');
    writeFileSync(html, (await buildAuditReport([path], key().publicKeys())).html);
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 }).catch(() => undefined);
      expect(errors).toEqual([]);
      expect(await page.getAttribute('body', 'data-ready')).toBe('true');
      expect(await page.locator('#sessions-body svg.lane rect').count()).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('kavach audit report output file', () => {
  it('is created no more readable than the log it copies (not world-readable)', async () => {
    const path = fresh();
    const log = await openLog(path, { recordArgs: true });
    await log.append(verdict({ args: { card: '4111 1111 1111 1111' } }));
    await log.close();
    const out = join(dir, 'private-report.html');
    await writeAuditReport([path], key().publicKeys(), out);
    expect(statSync(path).mode & 0o007).toBe(0);
    expect(statSync(out).mode & 0o007).toBe(0);
  });
});
