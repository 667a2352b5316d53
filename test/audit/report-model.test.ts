import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as cli } from '../../src/cli/audit.ts';
import { AuditLog, type AuditRecord } from '../../src/audit/index.ts';
import {
  buildAuditReport,
  buildReportModel,
  bucketWidth,
  scriptSafeJson,
  writeAuditReport,
  type ReportModel,
  type ReportRow,
} from '../../src/audit/report/index.ts';
import { Gate } from '../../src/engine/gate.ts';
import { key, lines, logNamer, openLog, tempDir, verdict, writeLines } from './helpers.ts';
import { START, writeGateRun, XSS_BREAKOUT, XSS_IMG, XSS_SCRIPT, type GateRun } from './report-fixture.ts';

const dir = tempDir();
const fresh = logNamer(dir, 'fresh');
let gateRun: GateRun;
let model: ReportModel;
let html: string;
let tampered: string;

const calls = (rows: readonly ReportRow[]): ReportRow[] => rows.filter((r) => r.kind === 'call');

/** The JSON data block, read back the way the page reads it. */
function embedded(page: string): ReportModel {
  const m = /<script type="application\/json" id="kavach-report-data">([^]*?)<\/script>/.exec(page);
  if (!m) throw new Error('no data block');
  return JSON.parse(m[1] as string) as ReportModel;
}

beforeAll(async () => {
  gateRun = await writeGateRun(dir, key());
  ({ model, html } = await buildAuditReport([gateRun.path], key().publicKeys(), { generatedAt: START }));
  // Edit one field of record 3 (research-bot's refused rm), leaving its hash as it was.
  tampered = join(dir, 'tampered.jsonl');
  const ls = lines(gateRun.path);
  expect(ls[3]).toContain('"principal":"research-bot"');
  ls[3] = (ls[3] as string).replace('"principal":"research-bot"', '"principal":"innocent-bot"');
  writeLines(tampered, ls);
});

afterEach(() => vi.restoreAllMocks());

describe('report data from a real gate run', () => {
  it('verifies the log: checkpoints, key id, nothing unsealed', () => {
    const [g] = model.integrity.logs;
    expect(model.integrity).toMatchObject({ status: 'verified', signed: true });
    expect(g).toMatchObject({
      status: 'verified',
      records: 24,
      checkpoints: 4,
      kids: [key().kid],
      unsealed: 0,
      unverified: 0,
      broken: null,
      mode: 'hybrid',
      anchored: true,
    });
    expect(model.integrity.headline).toBe(
      `Verified: every record's hash and link checked; 4 checkpoint signatures verified (key ${key().kid})`,
    );
    expect(new Set(model.rows.map((r) => r.trust))).toEqual(new Set(['sealed']));
  });

  it('counts calls by verdict, with observe-mode verdicts counted as let through', () => {
    expect(model.summary.totals).toMatchObject({
      records: 24,
      calls: 16,
      permits: 11,
      refusals: 4,
      invalidations: 1,
      observed: 4,
      wouldBlock: 3,
      sessions: 4,
      principals: 4,
      tools: 5,
      reloads: 2,
      failedReloads: 1,
      invalidationRecords: 1,
      drift: 1,
      unverified: 0,
    });
    expect(model.summary.refusalsByCode).toEqual([
      { name: 'NO_POLICY_MATCH', count: 2 },
      { name: 'SESSION_INVALID', count: 2 },
      { name: 'POLICY_DENIED', count: 1 },
    ]);
    expect(model.summary.refusalsByTool).toEqual([
      { name: 'fs.read_file', count: 2 },
      { name: XSS_IMG, count: 1 },
      { name: 'fs.rm', count: 1 },
      { name: 'net.fetch', count: 1 },
    ]);
    expect(model.summary.topPrincipals[0]).toEqual({
      name: 'research-bot',
      calls: 6,
      permits: 4,
      refusals: 2,
      invalidations: 0,
      wouldBlock: 0,
    });
  });

  it('says what enforcement would have blocked in observe mode', () => {
    expect(model.summary.observe).toEqual({
      observed: 4,
      wouldBlock: 3,
      byCode: [
        { name: 'POLICY_DENIED', count: 2 },
        { name: 'NO_POLICY_MATCH', count: 1 },
      ],
      byTool: [
        { name: 'fs.rm', count: 2 },
        { name: 'net.fetch', count: 1 },
      ],
      byPrincipal: [{ name: 'tuning-bot', count: 3 }],
    });
    const obs = calls(model.rows).filter((r) => r.session === 's-obs');
    expect(obs.map((r) => [r.tool, r.verdict, r.observed, r.wouldBlock ?? false])).toEqual([
      ['fs.read_file', 'permit', true, false],
      ['fs.rm', 'refuse', true, true],
      ['net.fetch', 'refuse', true, true],
      ['fs.rm', 'refuse', true, true],
    ]);
  });

  it('groups calls by session with refusals, invalidations and drift', () => {
    const by = Object.fromEntries(model.sessions.map((s) => [s.id, s]));
    expect(model.sessions.map((s) => s.id)).toEqual(['s-alpha', 's-beta', 'xss-1', 's-obs']);
    expect(by['s-alpha']).toMatchObject({ principals: ['research-bot'], calls: 6, permits: 4, refusals: 2, invalidations: 0, tools: 4 });
    expect(by['s-beta']).toMatchObject({ principals: ['billing-bot'], calls: 4, permits: 2, refusals: 1, invalidations: 1, drift: 1 });
    expect(by['s-obs']).toMatchObject({ calls: 4, permits: 4, refusals: 0, wouldBlock: 3 });
    expect(by['xss-1']).toMatchObject({ principals: [XSS_SCRIPT], calls: 2, refusals: 1 });
    const drift = model.rows.find((r) => r.drift);
    expect(drift).toMatchObject({ session: 's-beta', verdict: 'invalidate', code: 'SESSION_INVALID', evaluator: 'drift' });
    expect(drift?.reason).toMatch(/^ip drift: IP changed from 192\.0\.2\.1 to 198\.51\.100\.9/);
  });

  it('marks policy reloads (good and failed), drift and invalidations on the time axis', () => {
    expect(model.summary.markers.map((m) => m.kind)).toEqual(['drift', 'reload', 'failed-reload', 'invalidation']);
    const reloads = model.rows.filter((r) => r.kind === 'reload');
    expect(reloads.map((r) => r.detail)).toEqual([
      'policy set replaced: 3 policies',
      expect.stringMatching(/^reload FAILED, 3 policies stay in force: /),
    ]);
    const inval = model.rows.find((r) => r.kind === 'invalidation');
    expect(inval).toMatchObject({
      principal: 'billing-bot',
      reason: `offboarded after incident ${XSS_BREAKOUT}`,
      detail: 'invalidated principal billing-bot',
    });
    const buckets = model.summary.verdictsOverTime;
    expect(model.summary.bucketMs).toBe(60_000);
    const sum = (k: 'permit' | 'refuse' | 'invalidate' | 'wouldBlock') => buckets.reduce((n, b) => n + b[k], 0);
    expect([sum('permit'), sum('refuse'), sum('invalidate'), sum('wouldBlock')]).toEqual([8, 4, 1, 3]);
  });

  it('keeps agent-controlled markup as data, with the recorded arguments', () => {
    const xss = calls(model.rows).find((r) => r.tool === XSS_IMG);
    expect(xss).toMatchObject({ principal: XSS_SCRIPT, verdict: 'refuse', code: 'NO_POLICY_MATCH' });
    expect(xss?.reason).toContain(XSS_IMG);
    expect(xss?.extra.argsValue).toEqual({ note: XSS_SCRIPT, html: XSS_IMG, breakout: XSS_BREAKOUT });
    expect(model.facets.principals).toContain(XSS_SCRIPT);
  });
});

describe('the HTML page', () => {
  it('embeds the model as JSON that no recorded string can break out of', () => {
    const block = /<script type="application\/json" id="kavach-report-data">([^]*?)<\/script>/.exec(html)?.[1] as string;
    expect(block).not.toMatch(/[<>]/);
    expect(block).not.toContain('&');
    expect(embedded(html)).toEqual(model);
    // Exactly two script elements: the data block and the page's own code. No markup from the log.
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(html).not.toContain('<img');
    for (const xss of [XSS_SCRIPT, XSS_IMG, XSS_BREAKOUT, '<!--']) expect(html).not.toContain(xss);
  });

  it('pins its only script and stylesheet with a CSP that loads nothing', () => {
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1] as string;
    const script = /<script>([^]*?)<\/script>/.exec(html)?.[1] as string;
    const style = /<style>([^]*?)<\/style>/.exec(html)?.[1] as string;
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    expect(csp.split('; ')).toEqual(
      expect.arrayContaining([
        "default-src 'none'",
        `script-src ${hash(script)}`,
        `style-src ${hash(style)}`,
        "connect-src 'none'",
        "img-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
      ]),
    );
    expect(csp).not.toMatch(/unsafe|https?:|\*/);
    // Nothing in the page's own markup or code refers to another resource.
    const page = html.replace(/<script type="application\/json"[^]*?<\/script>/, '');
    expect(page).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(page).not.toMatch(/\b(src|href)=/);
  });

  it('escapes <, >, &, U+2028 and U+2029 in embedded JSON, and reads back the same', () => {
    const value = { a: '</script><!--<script>', b: 'x\u2028y\u2029z & <b>' };
    const out = scriptSafeJson(value);
    expect(out).not.toMatch(/[<>&\u2028\u2029]/);
    expect(out).toContain('\\u003c/script\\u003e\\u003c!--');
    expect(JSON.parse(out)).toEqual(value);
  });
});

describe('a tampered log', () => {
  it('gives a report whose banner data says broken at the edited record, with the rest shown unverified', async () => {
    const { model: m, html: page } = await buildAuditReport([tampered], key().publicKeys());
    expect(m.integrity.status).toBe('broken');
    const [g] = m.integrity.logs;
    expect(g?.broken).toMatchObject({ index: 3, code: 'HASH_MISMATCH', line: 4 });
    expect(m.integrity.headline).toMatch(/^BROKEN at record 3: .* \[HASH_MISMATCH\]$/);
    expect(g).toMatchObject({ records: 3, unverified: 21, status: 'broken' });
    expect(m.rows.slice(0, 3).every((r) => r.trust !== 'unverified')).toBe(true);
    expect(m.rows.slice(3).every((r) => r.trust === 'unverified')).toBe(true);
    // The forged record is still shown, as it reads, marked unverified.
    expect(m.rows[3]).toMatchObject({ principal: 'innocent-bot', tool: 'fs.rm', trust: 'unverified' });
    expect(m.summary.totals.unverified).toBe(21);
    expect(page).toContain('data-status="broken"');
    expect(page).toContain('<noscript><div class="state">INTEGRITY BROKEN at record 3.');
    expect(page).toContain('<title>[INTEGRITY BROKEN] Kavach audit report</title>');
  });

  it('a log cut behind its seal file is broken where the records stop', async () => {
    const cut = join(dir, 'cut.jsonl');
    writeLines(cut, lines(gateRun.path).slice(0, 21));
    copyFileSync(`${gateRun.path}.seal`, `${cut}.seal`);
    const { model: m } = await buildAuditReport([cut], key().publicKeys());
    expect(m.integrity.logs[0]).toMatchObject({ status: 'broken', records: 21, unverified: 0, broken: { index: 21, code: 'TRUNCATED' } });
    expect(m.integrity.headline).toMatch(
      /^BROKEN at record 21: the log ends at seq 20, but a checkpoint at seq 23 is known \(seal file\): records were cut \[TRUNCATED\]$/,
    );
  });

  it('over several logs: broken if any is, and names which', async () => {
    const { model: m } = await buildAuditReport([gateRun.path, tampered], key().publicKeys());
    expect(m.integrity.logs.map((g) => g.status)).toEqual(['verified', 'broken']);
    expect(m.integrity.headline).toBe(`BROKEN at record 3 in ${tampered}: ${m.integrity.logs[1]?.broken?.reason} [HASH_MISMATCH]`);
    expect(m.rows.map((r) => r.time ?? 0)).toEqual([...m.rows.map((r) => r.time ?? 0)].sort((a, b) => a - b));
    expect(m.rows.map((r) => r.id)).toEqual(m.rows.map((_, i) => i));
  });
});

describe('a log still being written', () => {
  const reads = { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read_*' }] }] };
  const read = { principalId: 'a', principalKind: 'agent' as const, actionName: 'fs.read_file', sessionId: 's' };
  const opts = { keyPair: key(), mode: 'hybrid' as const, checkpointEvery: { entries: 1000, ms: 3_600_000 } };

  it('says when no checkpoint signs anything yet, and counts records after the last checkpoint as unsealed', async () => {
    const path = join(dir, 'open.jsonl');
    const log = await AuditLog.open(path, opts);
    try {
      const gate = Gate.fromDict(reads, { audit: log, drift: false });
      for (let i = 0; i < 3; i++) await gate.evaluate(read);
      const { model: m } = await buildAuditReport([path], key().publicKeys());
      expect(m.integrity).toMatchObject({ status: 'verified', signed: false });
      expect(m.integrity.logs[0]).toMatchObject({ checkpoints: 0, unsealed: 4, lastCheckpoint: null });
      expect(m.integrity.headline).toBe(
        'Chain intact but NOT SIGNED: no checkpoint seals this log yet; its 4 records could be rewritten by anyone able to write the file',
      );
    } finally {
      await log.close();
    }
    // Closing seals records 0..3 (checkpoint at seq 4); one more after reopening is unsealed.
    const again = await AuditLog.open(path, opts);
    try {
      await Gate.fromDict(reads, { audit: again, drift: false }).evaluate(read);
      const { model: m } = await buildAuditReport([path], key().publicKeys());
      expect(m.integrity).toMatchObject({ status: 'verified', signed: true });
      expect(m.integrity.logs[0]).toMatchObject({ checkpoints: 1, unsealed: 1, lastCheckpoint: { seq: 4 } });
      expect(m.integrity.headline).toMatch(/; 1 record after the last checkpoint not yet sealed$/);
      expect(m.rows.map((r) => r.trust)).toEqual(['sealed', 'sealed', 'sealed', 'sealed', 'sealed', 'unsealed']);
    } finally {
      await again.close();
    }
  });
});

describe('trust of rows in a partial log (one segment, starting mid-chain)', () => {
  it('marks records after the last checkpoint unsealed, judged by seq, not by position in the file', async () => {
    const path = join(dir, 'partial-source.jsonl');
    const log = await AuditLog.open(path, { keyPair: key(), mode: 'hybrid', checkpointEvery: { entries: 4, ms: Infinity } });
    for (let i = 0; i < 10; i++) {
      await log.append({
        type: 'verdict',
        evaluationId: `p-${i}`,
        principal: 'bot',
        principalKind: 'agent',
        action: 't.x',
        verdict: 'permit',
        time: START + i,
        args: {},
      });
    }
    const all = lines(path);
    await log.close();
    // seq: 0 genesis, 1-3, 4 cp, 5-8, 9 cp, 10-12 unsealed (as read before close).
    expect(all.map((l) => JSON.parse(l).type as string).filter((t) => t === 'checkpoint')).toHaveLength(2);
    const part = join(dir, 'partial.jsonl');
    writeLines(part, all.slice(6));
    const { model: m } = await buildAuditReport([part], key().publicKeys(), { partial: true });
    expect(m.integrity.status).toBe('verified');
    expect(m.rows.map((r) => [r.seq, r.trust])).toEqual([
      [6, 'sealed'],
      [7, 'sealed'],
      [8, 'sealed'],
      [9, 'sealed'],
      [10, 'unsealed'],
      [11, 'unsealed'],
      [12, 'unsealed'],
    ]);
  });
});

describe('time buckets', () => {
  it('picks a readable width that keeps the bucket count under the limit', () => {
    expect(bucketWidth(30_000, 48)).toBe(1_000);
    expect(bucketWidth(20 * 60_000, 48)).toBe(60_000);
    expect(bucketWidth(6 * 3_600_000, 48)).toBe(900_000);
    expect(bucketWidth(40 * 86_400_000, 48)).toBe(86_400_000);
  });
});

describe('kavach audit report', () => {
  async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
    try {
      return { code: await cli(argv), out, err };
    } finally {
      vi.restoreAllMocks();
    }
  }

  it('writes the page and exits 0 for a verified log, 1 for a broken one (still writing the page)', async () => {
    const out = join(dir, 'report.html');
    const ok = await run('report', gateRun.path, '--keys', gateRun.keysPath, '--out', out);
    expect(ok.code).toBe(0);
    // The state is said once: the headline leads with it (#16: it read "verified — Verified").
    expect(ok.out.split('\n')[0]).toBe(`${out}: ${embedded(readFileSync(out, 'utf8')).integrity.headline}`);
    expect(ok.out).toMatch(/^[^\n]*: Verified: every record's hash/);
    expect(ok.out.match(/verified/gi)).toHaveLength(2); // "Verified: ... 4 checkpoint signatures verified"
    expect(ok.out).toContain(', 4 sessions\n');
    expect(embedded(readFileSync(out, 'utf8')).summary.totals.calls).toBe(16);
    const badOut = join(dir, 'bad.html');
    const bad = await run('report', tampered, '--keys', gateRun.keysPath, '--out', badOut);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/^[^\n]*bad\.html: BROKEN at record 3: /);
    expect(embedded(readFileSync(badOut, 'utf8')).integrity.logs[0]?.broken?.index).toBe(3);
  });

  it('needs --keys and --out, and fails on a missing file', async () => {
    expect((await run('report', gateRun.path, '--out', join(dir, 'x.html'))).code).toBe(2);
    expect((await run('report', gateRun.path, '--keys', gateRun.keysPath)).code).toBe(2);
    const missing = await run('report', join(dir, 'nope.jsonl'), '--keys', gateRun.keysPath, '--out', join(dir, 'y.html'));
    expect(missing.code).toBe(2); // a file that cannot be read, not a log that failed verification
    expect(missing.err).toContain('no audit log at');
  });
});

describe('report totals keyed by recorded text', () => {
  it('count outcomes named like Object.prototype members', () => {
    const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h' };
    const records = ['constructor', '__proto__', 'ok', 'constructor'].map((outcome, seq) => ({
      ...header,
      seq,
      time: 1_000 + seq,
      type: 'outcome',
      evaluationId: `e${seq}`,
      outcome,
      durationMs: 1,
    })) as unknown as AuditRecord[];
    const model = buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt: 0 });
    expect(Object.entries(model.summary.totals.outcomes).sort()).toEqual([
      ['__proto__', 1],
      ['constructor', 2],
      ['ok', 1],
    ]);
  });
});

describe('the report on what servers sent of their own accord', () => {
  it('shows a kavach.mcp_screened record as where a screen found what, never a value', () => {
    const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h', seq: 0, time: 1_000 };
    const records = [
      {
        ...header,
        type: 'kavach.mcp_screened',
        server: 'fx',
        method: 'sampling/createMessage',
        findings: [{ screen: 'no-keys', detector: 'aws_access_key', path: '/messages/0/content/text', count: 1 }],
        withheld: true,
      },
    ] as unknown as AuditRecord[];
    const model = buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt: 0 });
    const row = model.rows.find((r) => r.type === 'kavach.mcp_screened');
    expect(row?.detail).toBe('server fx sent sampling/createMessage: aws_access_key at /messages/0/content/text; withheld');
    expect(row?.extra).toEqual({});
  });
});

describe('the report time axis', () => {
  it('is built for calls whose times span more than a double can hold (recorded time is any finite number)', () => {
    const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h' };
    const records = [-1.7e308, 1_770_000_000_000, 1.7e308].map((time, seq) => ({
      ...header,
      seq,
      time,
      type: 'verdict',
      evaluationId: `e${seq}`,
      principal: 'p',
      verdict: 'permit',
    })) as unknown as AuditRecord[];
    const model = buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt: 0 });
    const buckets = model.summary.verdictsOverTime;
    expect(buckets.length).toBeGreaterThan(0);
    expect(buckets.length).toBeLessThanOrEqual(49);
    expect(buckets.reduce((n, b) => n + b.permit, 0)).toBe(3);
    expect(Number.isFinite(model.summary.bucketMs)).toBe(true);
  });
});

describe('writeAuditReport output file', () => {
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
