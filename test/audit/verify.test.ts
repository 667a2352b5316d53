import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuditError, verifyAuditLog, type AuditErrorCode, type AuditKeys } from '../../src/audit/index.ts';
import { CHECKPOINT_DOMAIN, checkpointMessage, sealRecord } from '../../src/audit/record.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { signEnvelope } from '../../src/crypto/signatures.ts';
import { auditRejection, key, logNamer, openLog, parse, tempDir, verdict, writeLines, writeLog } from './helpers.ts';

const dir = tempDir();
const fresh = logNamer(dir, 'fresh');
let base: string[];
const text = (ls: readonly string[]): string => ls.map((l) => `${l}\n`).join('');

/** Re-encodes a record with a fresh hash, as an attacker without the key can. */
function reseal(fields: Record<string, unknown>): string {
  const { hash: _h, ...rest } = fields;
  return sealRecord(rest).line;
}

async function failure(source: string | string[], keys: AuditKeys = key().publicKeys(), opts = {}): Promise<AuditError> {
  try {
    await verifyAuditLog(source, keys, opts);
  } catch (err) {
    if (err instanceof AuditError) return err;
    throw err;
  }
  throw new Error('verification passed');
}

async function expectFailure(ls: readonly string[], code: AuditErrorCode, index: number): Promise<AuditError> {
  const err = await failure(text(ls));
  expect({ code: err.code, index: err.index }, err.message).toEqual({ code, index });
  return err;
}

beforeAll(async () => {
  // genesis, 20 verdicts, a checkpoint after every 8 records, a final checkpoint.
  base = await writeLog(join(dir, 'base.jsonl'), 20, { checkpointEvery: { entries: 8 } });
});

describe('verifyAuditLog on an intact log', () => {
  it('counts by verdict, code, principal, action, session and reports checkpoints', async () => {
    const report = await verifyAuditLog(text(base), key().publicKeys());
    expect(report.records).toBe(base.length);
    expect(report.byVerdict).toEqual({ permit: 15, refuse: 5 });
    expect(report.byCode).toEqual({ NO_POLICY_MATCH: 5 });
    expect(report.byPrincipal).toEqual({ 'agent-1': 20 });
    expect(report.byAction).toEqual({ 'fs.read_file': 20 });
    expect(report.bySession).toEqual({ 'sess-1': 20 });
    expect(report.checkpoints).toBe(base.filter((l) => parse(l).type === 'checkpoint').length);
    expect(report.checkpoints).toBeGreaterThanOrEqual(3);
    expect(report.unsealed).toBe(0);
    expect(report.mode).toBe('hybrid');
    expect(report.kids).toEqual([key().kid]);
    expect(report.signaturesChecked).toBe(true);
  });

  it('counts the records after the last checkpoint as unsealed while the log is open', async () => {
    const path = join(dir, 'open.jsonl');
    const log = await openLog(path, { checkpointEvery: { entries: 1000, ms: 3_600_000 } });
    await log.append(verdict());
    await log.checkpoint();
    for (let i = 0; i < 3; i++) await log.append(verdict());
    const report = await verifyAuditLog(path, key().publicKeys());
    expect(report.unsealed).toBe(3);
    expect(report.checkpoints).toBe(1);
    await log.close();
    expect((await verifyAuditLog(path, key().publicKeys())).unsealed).toBe(0);
  });

  it('verifies from a path, with its seal file, and anchors to it', async () => {
    const report = await verifyAuditLog(join(dir, 'base.jsonl'), key().publicKeys());
    expect(report.anchored).toBe(true);
  });
});

describe('verifyAuditLog names the index of', () => {
  it('an edited field', async () => {
    const ls = base.slice();
    ls[5] = (ls[5] as string).replace('"principal":"agent-1"', '"principal":"agent-2"');
    const err = await expectFailure(ls, 'HASH_MISMATCH', 5);
    expect(err.reason).toMatch(/edited/);
  });

  it('an edited field whose record was re-hashed', async () => {
    const ls = base.slice();
    ls[5] = reseal({ ...parse(ls[5] as string), verdict: 'permit', code: undefined, reason: 'hidden' });
    await expectFailure(ls, 'REWRITTEN', 5);
  });

  it('a dropped record', async () => {
    const ls = base.slice();
    ls.splice(7, 1);
    await expectFailure(ls, 'DROPPED', 7);
  });

  it('two reordered records', async () => {
    const ls = base.slice();
    [ls[7], ls[8]] = [ls[8] as string, ls[7] as string];
    await expectFailure(ls, 'REORDERED', 7);
  });

  it('a forged record inserted with the right seq and prev', async () => {
    const ls = base.slice();
    const before = parse(ls[6] as string);
    const forged = reseal({ ...parse(ls[7] as string), seq: 7, prev: before.hash, principal: 'intruder', evaluationId: 'forged' });
    ls.splice(7, 0, forged);
    await expectFailure(ls, 'INSERTED', 7);
  });

  it('a copied record inserted elsewhere', async () => {
    const ls = base.slice();
    ls.splice(9, 0, reseal({ ...parse(ls[3] as string), action: 'fs.delete' }));
    await expectFailure(ls, 'INSERTED', 9);
  });

  it('a duplicated record', async () => {
    const ls = base.slice();
    ls.splice(7, 0, ls[6] as string);
    await expectFailure(ls, 'INSERTED', 7);
  });

  it('a record replaced by a forgery that does not link', async () => {
    const ls = base.slice();
    ls[7] = reseal({ ...parse(ls[7] as string), prev: 'B'.repeat(43), principal: 'intruder' });
    await expectFailure(ls, 'FORGED', 7);
  });

  it('two logs spliced together', async () => {
    const other = await writeLog(join(dir, 'other.jsonl'), 20, { checkpointEvery: { entries: 8 } });
    await expectFailure([...base.slice(0, 11), ...other.slice(11)], 'SPLICED', 11);
    await expectFailure([...base, ...other], 'SPLICED', base.length);
  });

  it('a rewritten history that re-hashes everything after the edit, at the next checkpoint', async () => {
    const ls = base.slice();
    const firstCp = ls.findIndex((l) => parse(l).type === 'checkpoint');
    let prev = parse(ls[1] as string).prev;
    for (let i = 1; i < ls.length; i++) {
      const r = parse(ls[i] as string);
      const fields = {
        ...r,
        prev,
        ...(i === 1 ? { verdict: 'refuse', code: 'POLICY_DENIED' } : {}),
        ...(r.type === 'checkpoint' ? { head: prev } : {}),
      };
      ls[i] = reseal(fields);
      prev = parse(ls[i] as string).hash;
    }
    const err = await failure(text(ls));
    expect(err.code).toBe('BAD_SIGNATURE');
    expect(err.index).toBe(firstCp);
  });

  it('truncation behind the last checkpoint (seal file)', async () => {
    const path = join(dir, 'cut.jsonl');
    copyFileSync(join(dir, 'base.jsonl'), path);
    copyFileSync(join(dir, 'base.jsonl.seal'), `${path}.seal`);
    const firstCp = base.findIndex((l) => parse(l).type === 'checkpoint');
    writeLines(path, base.slice(0, firstCp + 1));
    const err = await failure(path);
    expect(err.code).toBe('TRUNCATED');
    expect(err.index).toBe(firstCp + 1);
  });

  it('truncation behind a checkpoint kept elsewhere (anchor)', async () => {
    const lastCp = base.length - 1;
    const err = await failure(text(base.slice(0, lastCp - 3)), key().publicKeys(), { anchor: base[lastCp] });
    expect(err.code).toBe('TRUNCATED');
    expect(err.index).toBe(lastCp - 3);
  });

  it('a wrong key', async () => {
    const err = await failure(text(base), KeyPair.generate().publicKeys());
    expect(err.code).toBe('WRONG_KEY');
    expect(err.index).toBe(base.findIndex((l) => parse(l).type === 'checkpoint'));
  });

  it('a PQ-only checkpoint in a hybrid log', async () => {
    const ls = base.slice();
    const last = parse(ls.at(-1) as string);
    const msg = checkpointMessage(last as never);
    const pqSig = await signEnvelope(key(), 'pq', CHECKPOINT_DOMAIN, msg);
    ls[ls.length - 1] = reseal({ ...last, mode: 'pq', sig: pqSig });
    await expectFailure(ls, 'MODE_MISMATCH', ls.length - 1);
    // Same, with the mode field left saying hybrid: the envelope itself gives it away.
    ls[ls.length - 1] = reseal({ ...last, sig: pqSig });
    await expectFailure(ls, 'MODE_MISMATCH', ls.length - 1);
  });

  it('a PQ-only log checked by a hybrid verifier (and it verifies as PQ-only)', async () => {
    const pq = await writeLog(join(dir, 'pq.jsonl'), 3, { mode: 'pq' });
    expect((await verifyAuditLog(text(pq), key().publicKeys(), { mode: 'pq' })).mode).toBe('pq');
    const err = await failure(text(pq), key().publicKeys(), { mode: 'hybrid' });
    expect({ code: err.code, index: err.index }).toEqual({ code: 'MODE_MISMATCH', index: 0 });
  });

  it('a hybrid log checked by a PQ-only verifier', async () => {
    const err = await failure(text(base), key().publicKeys(), { mode: 'pq' });
    expect({ code: err.code, index: err.index }).toEqual({ code: 'MODE_MISMATCH', index: 0 });
  });

  it('a record re-encoded with a duplicate key', async () => {
    const ls = base.slice();
    ls[4] = (ls[4] as string).replace('{', '{"verdict":"refuse",');
    await expectFailure(ls, 'NOT_CANONICAL', 4);
  });

  it('a log whose beginning is missing', async () => {
    await expectFailure(base.slice(3), 'BAD_START', 0);
  });

  it('a checkpoint whose signed size disagrees with its place', async () => {
    const ls = base.slice();
    const at = ls.findIndex((l) => parse(l).type === 'checkpoint');
    ls[at] = reseal({ ...parse(ls[at] as string), size: 2 });
    await expectFailure(ls, 'BAD_CHECKPOINT', at);
  });

  it('garbage in place of a record', async () => {
    const ls = base.slice();
    ls[3] = '{"not": "a record"';
    await expectFailure(ls, 'BAD_RECORD', 3);
  });
});

describe('verifyAuditLog and crash leftovers', () => {
  it('reports a torn last line without counting it', async () => {
    const report = await verifyAuditLog(`${text(base)}{"seq":99,"pr`, key().publicKeys());
    expect(report.tornTail?.bytes).toBe(13);
    expect(report.records).toBe(base.length);
  });

  it('refuses an empty log', async () => {
    const path = join(dir, 'empty.jsonl');
    writeFileSync(path, '');
    expect((await failure(path)).code).toBe('BAD_START');
    expect((await failure(join(dir, 'missing.jsonl'))).code).toBe('NOT_FOUND');
  });
});

describe('pinning which keys may seal a log', () => {
  it('refuses a log sealed by another trusted key when signers name only the log owner', async () => {
    const { PublicKeyDirectory } = await import('../../src/crypto/key-directory.ts');
    const owner = key();
    const other = KeyPair.generate();
    const both = PublicKeyDirectory.inMemory([owner.publicKeys(), other.publicKeys()]);
    // Both keys are trusted: without a pin, a log sealed by either verifies.
    expect((await verifyAuditLog(text(base), both)).checkpoints).toBeGreaterThan(0);
    const ok = await verifyAuditLog(text(base), both, { signers: [owner.kid] });
    expect(ok.kids).toEqual([owner.kid]);
    const err = await failure(text(base), both, { signers: [other.kid] });
    expect(err.code).toBe('WRONG_KEY');
    expect(err.message).toContain('may not seal this log');
  });
});

describe('verifyAuditLog counting names that are also Object.prototype members', () => {
  it('counts principals, actions and sessions named constructor, __proto__ or toString like any other', async () => {
    const path = fresh();
    const log = await openLog(path);
    for (const name of ['constructor', '__proto__', 'toString', 'constructor']) {
      await log.append(verdict({ principal: name, action: name, session: name }));
    }
    await log.close();
    const report = await verifyAuditLog(path, key().publicKeys());
    const expected = [
      ['__proto__', 1],
      ['constructor', 2],
      ['toString', 1],
    ];
    for (const counts of [report.byPrincipal, report.byAction, report.bySession]) {
      expect(Object.entries(counts).sort()).toEqual(expected);
      expect(Object.entries(JSON.parse(JSON.stringify(counts)) as object).sort()).toEqual(expected);
    }
  });
});

describe('verifyAuditLog on bytes that are not UTF-8', () => {
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
