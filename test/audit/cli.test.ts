import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/audit.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { sealRecord } from '../../src/audit/record.ts';
import type { VerdictRecord } from '../../src/audit/index.ts';
import { key, lines, logNamer, openLog, parse, tempDir, verdict, writeLines } from './helpers.ts';

const dir = tempDir();
const logPath = join(dir, 'audit.jsonl');
const keysPath = join(dir, 'public.json');
const fresh = logNamer(dir, 'fresh');

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

beforeAll(async () => {
  writeFileSync(keysPath, JSON.stringify(key().publicKeys()));
  const log = await openLog(logPath);
  await log.append(verdict({ principal: 'alice', session: 's-1', action: 'fs.read_file', time: Date.parse('2026-01-01T10:00:00Z') }));
  await log.append(
    verdict({
      principal: 'alice',
      session: 's-1',
      action: 'fs.rm',
      verdict: 'refuse',
      code: 'POLICY_DENIED',
      reason: "'no-rm' refuses 'fs.rm'",
      time: Date.parse('2026-01-01T10:01:00Z'),
    }),
  );
  await log.append(
    verdict({
      principal: 'bob',
      session: 's-2',
      action: 'net.fetch',
      verdict: 'refuse',
      code: 'NO_POLICY_MATCH',
      time: Date.parse('2026-01-02T09:00:00Z'),
    }),
  );
  await log.close();
});

describe('kavach audit verify', () => {
  it('exits 0 with a summary for an intact log', async () => {
    const r = await cli('verify', logPath, '--keys', keysPath);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ok — 5 records \(permit 1, refuse 2, invalidate 0\); 1 checkpoint \(hybrid\)/);
  });

  it('exits 1 naming the index and reason of a tampered record', async () => {
    const bad = join(dir, 'bad.jsonl');
    const ls = lines(logPath);
    ls[2] = (ls[2] as string).replace('"principal":"alice"', '"principal":"mallory"');
    writeLines(bad, ls);
    const r = await cli('verify', logPath, bad, '--keys', keysPath);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${bad}: FAILED at record 2 [HASH_MISMATCH]`);
    expect(r.out).toContain(`${logPath}: ok`);
  });

  it('exits 1 for a log signed by another key, and 2 without --keys', async () => {
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify(KeyPair.generate().publicKeys()));
    expect((await cli('verify', logPath, '--keys', other)).out).toMatch(/FAILED at record 4 \[WRONG_KEY\]/);
    expect((await cli('verify', logPath)).code).toBe(2);
  });

  it('reports as JSON', async () => {
    const r = await cli('verify', logPath, '--keys', keysPath, '--json');
    expect(JSON.parse(r.out)).toMatchObject([{ file: logPath, ok: true, report: { records: 5, checkpoints: 1 } }]);
  });
});

describe('kavach audit show', () => {
  it('prints a readable timeline', async () => {
    const r = await cli('show', logPath);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /2026-01-01 10:01:00\.000 +#2 +REFUSE +alice \(agent\) +fs\.rm +\[POLICY_DENIED\] +'no-rm' refuses 'fs\.rm'.*session=s-1/,
    );
    expect(r.out).toMatch(/-- 5 of 5 records shown; chain intact/);
  });

  it('filters by session, principal, verdict and time', async () => {
    const bySession = await cli('show', logPath, '--session', 's-1', '--verdict', 'refuse');
    expect(bySession.out.split('\n').filter((l) => l.includes('REFUSE'))).toHaveLength(1);
    const byPrincipal = await cli('show', logPath, '--principal', 'bob', '--json');
    expect(
      byPrincipal.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).principal),
    ).toEqual(['bob']);
    const since = await cli('show', logPath, '--since', '2026-01-02T00:00:00Z', '--type', 'verdict', '--json');
    expect(since.out.trim().split('\n')).toHaveLength(1);
    expect((await cli('show', logPath, '--verdict', 'maybe')).code).toBe(2);
  });

  it('stops at a broken chain with exit 1', async () => {
    const bad = join(dir, 'broken.jsonl');
    const ls = lines(logPath);
    ls.splice(2, 1);
    writeLines(bad, ls);
    const r = await cli('show', bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/audit record 2: .*missing/);
  });
});

describe('kavach audit stats', () => {
  it('summarises counts, checkpoints and signatures', async () => {
    const r = await cli('stats', logPath, '--keys', keysPath);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/verdicts +refuse 2 · permit 1/);
    expect(r.out).toMatch(/principals +alice 2 · bob 1/);
    expect(r.out).toMatch(/signatures +verified/);
    expect(JSON.parse((await cli('stats', logPath, '--json')).out)).toMatchObject({ records: 5, signaturesChecked: false });
  });

  it('report needs --keys (the HTML report is tested in report-model.test.ts)', async () => {
    const r = await cli('report', logPath);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--keys public\.json is required/);
  });
});

describe('recorded text reaching the terminal', () => {
  it('shows control characters, escape sequences and bidi overrides as escapes, never raw', async () => {
    const path = join(dir, 'hostile.jsonl');
    const log = await openLog(path);
    // An agent or upstream chooses these: erase the line and forge a PERMIT, or spoof a second line.
    const evil = '\u001b[2K\r2026-01-01 10:00:00.000       #9  PERMIT     alice\nforged line\u009b31m\u202e';
    await log.append(
      verdict({
        principal: `p${evil}`,
        session: `s${evil}`,
        action: `a${evil}`,
        verdict: 'refuse',
        code: 'POLICY_DENIED',
        reason: evil,
        args: { x: evil },
      }),
    );
    await log.append({ type: 'outcome', evaluationId: `e${evil}`, outcome: 'tool_error', durationMs: 1, error: evil });
    await log.close();
    for (const argv of [
      ['show', path],
      ['stats', path],
    ]) {
      const r = await cli(...argv);
      expect(r.code).toBe(0);
      expect(r.out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
      expect(r.out).not.toContain('\nforged line');
    }
    expect((await cli('show', path)).out).toContain('\\u001b[2K\\u000d');
  });
});

describe('kavach audit verify of a log nothing signs', () => {
  it('exits 1: a well-chained log without a single checkpoint could have been written by anyone', async () => {
    const path = join(dir, 'unsigned.jsonl');
    // Forged from scratch: a genesis and a verdict, chained correctly, no checkpoint, no seal file.
    const genesis = sealRecord({
      type: 'genesis',
      time: 1,
      version: 1,
      mode: 'hybrid',
      kid: key().kid,
      seq: 0,
      prev: 'A'.repeat(43),
      log: 'forged-log',
    });
    const forged = sealRecord({
      type: 'verdict',
      time: 2,
      evaluationId: 'e',
      principal: 'mallory',
      verdict: 'permit',
      seq: 1,
      prev: genesis.hash,
      log: 'forged-log',
    });
    writeLines(path, [genesis.line, forged.line]);
    const r = await cli('verify', path, '--keys', keysPath);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAILED at record 2 \[TRUNCATED\] no checkpoint seals any record/);
  });
});

describe('kavach audit --json on a terminal', () => {
  it('writes C1 controls, bidi overrides and line separators in recorded text as \\u escapes, the same JSON', async () => {
    const path = fresh();
    // U+009B is CSI for a terminal decoding UTF-8 C1 controls: "erase line" and a forged verdict.
    const evil = 'x\u009b2K\u009b1Aforged PERMIT\u202e\u2028';
    const log = await openLog(path);
    await log.append(verdict({ principal: evil, session: evil, reason: evil }));
    await log.close();
    for (const argv of [
      ['show', path, '--json'],
      ['stats', path, '--json'],
      ['verify', path, '--keys', keysPath, '--json'],
    ]) {
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
    const odd = sealRecord({
      type: 'invalidation',
      time: 5,
      reason: 'odd',
      remote: false,
      scope: null,
      seq: (last.seq as number) + 1,
      prev: last.hash,
      log: last.log,
    });
    writeFileSync(path, `${readFileSync(path, 'utf8')}${odd.line}\n`);
    const shown = await cli('show', path);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/INVALIDATE.*odd/);
    expect((await cli('show', path, '--principal', 'alice')).code).toBe(0);
    expect((await cli('show', path, '--session', 'sess-1')).code).toBe(0);
  });
});
