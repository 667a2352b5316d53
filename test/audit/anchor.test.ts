import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { verifyAuditLog, type AuditLog } from '../../src/audit/index.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { signEnvelope } from '../../src/crypto/signatures.ts';
import { CHECKPOINT_DOMAIN, checkpointMessage, sealRecord } from '../../src/audit/record.ts';
import { auditRejection, key, lines, logNamer, openLog, parse, tempDir, verdict, writeLines } from './helpers.ts';
import { MemoryAnchor } from './memory-anchor.ts';

const dir = tempDir();
const fresh = logNamer(dir, 'anchor');
const keys = () => key().publicKeys();
/** A checkpoint every 4 records, and only then: where checkpoints fall is the test's to choose. */
const EVERY_4 = { checkpointEvery: { entries: 4, ms: Infinity } };

/** Writes one verdict per action, in order, with the log anchored; returns the file's lines. */
async function writeAnchored(path: string, anchor: MemoryAnchor, actions: string[]): Promise<string[]> {
  const log = await openLog(path, { ...EVERY_4, anchor });
  for (const action of actions) await log.append(verdict({ action }));
  await log.close();
  return lines(path);
}

const seqOf = (line: string): number => parse(line).seq as number;
const isCheckpoint = (line: string): boolean => parse(line).type === 'checkpoint';

/** What a host that holds the key can do: keep lines 0..`at` (a checkpoint) and rebuild the seal file to match. */
function cutBack(path: string, ls: readonly string[], at: number): void {
  writeLines(path, ls.slice(0, at + 1));
  writeFileSync(`${path}.seal`, `${ls[at]}\n`);
}

function lastCheckpointBefore(ls: readonly string[], index: number): number {
  for (let i = index - 1; i >= 0; i--) if (isCheckpoint(ls[i] as string)) return i;
  throw new Error('no checkpoint before');
}

const ACTIONS = ['fs.read_file', 'fs.read_file', 'fs.read_file', 'fs.list', 'bank.transfer', 'fs.read_file', 'fs.list', 'fs.read_file'];

describe('AuditLog with an anchor', () => {
  it("sends every checkpoint to the anchor; after close its newest is the log's last checkpoint", async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const ls = await writeAnchored(path, anchor, ACTIONS);
    const checkpoints = ls.filter(isCheckpoint).map(parse);
    expect(checkpoints.length).toBeGreaterThanOrEqual(3);
    const logId = checkpoints[0]?.log as string;
    expect((await anchor.history(logId, 0, Infinity)).map((h) => h.seq)).toEqual(checkpoints.map((c) => c.seq));
    const newest = checkpoints.at(-1) as Record<string, unknown>;
    expect(await anchor.latest(logId)).toEqual({ logId, seq: newest.seq, headHash: newest.head, signature: newest.sig, time: newest.time });
    const report = await verifyAuditLog(path, keys(), { anchor });
    expect(report.witness).toEqual({ latest: { seq: newest.seq, time: newest.time }, matched: checkpoints.length, unanchored: 0 });
  });

  it('a log cut back to an earlier checkpoint (a bank.transfer permit dropped) passes on its local seal alone, and fails against the anchor', async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const ls = await writeAnchored(path, anchor, ACTIONS);
    const transfer = ls.findIndex((l) => l.includes('"action":"bank.transfer"'));
    cutBack(path, ls, lastCheckpointBefore(ls, transfer));

    // The gap this feature closes: the seal file was rebuilt from the log, so it "matches".
    const local = await verifyAuditLog(path, keys());
    expect(local.anchored).toBe(true);
    expect(local.byAction['bank.transfer']).toBeUndefined();

    const err = await auditRejection(verifyAuditLog(path, keys(), { anchor }));
    expect(err.code).toBe('TRUNCATED');
    const newest = seqOf(ls.at(-1) as string);
    expect(err.reason).toContain(`the audit anchor holds its checkpoint at seq ${newest}`);
    expect(err.reason).toContain(`signed by key ${key().kid}`);
  });

  it('a log rewritten from an earlier checkpoint and sealed again with the key fails against the anchor (a checkpoint replaced)', async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const ls = await writeAnchored(path, anchor, ACTIONS);
    cutBack(
      path,
      ls,
      lastCheckpointBefore(
        ls,
        ls.findIndex((l) => l.includes('bank.transfer')),
      ),
    );
    // The host's own writer, without the anchor: different records, re-sealed, longer than before.
    const forged = await openLog(path, EVERY_4);
    for (let i = 0; i < ACTIONS.length + 4; i++) await forged.append(verdict({ action: 'fs.read_file' }));
    await forged.close();
    expect((await verifyAuditLog(path, keys())).anchored).toBe(true);

    const err = await auditRejection(verifyAuditLog(path, keys(), { anchor }));
    expect(err.code).toBe('ANCHOR_MISMATCH');
    expect(err.reason).toMatch(/the log was rewritten/);
  });

  it('finds a checkpoint whose signature was replaced (the same records, signed again)', async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const ls = await writeAnchored(path, anchor, ACTIONS.slice(0, 3));
    const at = ls.length - 1;
    expect(isCheckpoint(ls[at] as string)).toBe(true);
    // Signatures are randomized: signing the same message again gives another valid envelope.
    const { hash: _hash, ...cp } = parse(ls[at] as string);
    const sig = await signEnvelope(
      key(),
      'hybrid',
      CHECKPOINT_DOMAIN,
      checkpointMessage(cp as { log: string; size: number; head: string; time: number }),
    );
    expect(sig).not.toBe(cp.sig);
    const replaced = sealRecord({ ...cp, sig }).line;
    writeLines(path, [...ls.slice(0, at), replaced]);
    writeFileSync(`${path}.seal`, `${replaced}\n`);
    await expect(verifyAuditLog(path, keys())).resolves.toMatchObject({ anchored: true });

    const err = await auditRejection(verifyAuditLog(path, keys(), { anchor }));
    expect(err.code).toBe('ANCHOR_MISMATCH');
    expect(err.index).toBe(at);
    expect(err.reason).toContain('another signature or time');
  });

  it('refuses to reopen a log the anchor knows was longer, and leaves the file as it was', async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const ls = await writeAnchored(path, anchor, ACTIONS);
    cutBack(
      path,
      ls,
      lastCheckpointBefore(
        ls,
        ls.findIndex((l) => l.includes('bank.transfer')),
      ),
    );
    const before = readFileSync(path, 'utf8');
    const err = await auditRejection(openLog(path, { anchor }));
    expect(err.code).toBe('TRUNCATED');
    expect(err.message).toMatch(/later than this log's newest at seq \d+: the log was cut back/);
    expect(readFileSync(path, 'utf8')).toBe(before);
    // Nothing held: the lock was released.
    await (await openLog(path)).close();
  });

  it('closes with a warning when the anchor cannot take the final checkpoint, and sends it on the next open', async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const warnings: string[] = [];
    const log = await openLog(path, { ...EVERY_4, anchor, onWarning: (m) => warnings.push(m) });
    for (let i = 0; i < 5; i++) await log.append(verdict());
    anchor.down = new Error('connection refused');
    await log.close();
    expect(warnings.at(-1)).toMatch(/did not take the log's newest checkpoint \(seq \d+\) before close; the next open sends it/);
    const final = parse(lines(path).at(-1) as string);
    expect(final.type).toBe('checkpoint');
    expect(anchor.newest.get(final.log as string)?.seq).toBeLessThan(final.seq as number);

    anchor.down = undefined;
    const again = await openLog(path, { anchor });
    expect(anchor.newest.get(final.log as string)?.seq).toBe(final.seq);
    await again.close();
  });
});

describe('AuditLog when the anchor cannot take a checkpoint (fail closed)', () => {
  it('refuses appends until the anchor takes the newest checkpoint, says so through onWarning, then resumes', async () => {
    const anchor = new MemoryAnchor();
    const warnings: string[] = [];
    const log = await openLog(fresh(), { checkpointEvery: { entries: 1_000, ms: Infinity }, anchor, onWarning: (m) => warnings.push(m) });
    await log.append(verdict());
    anchor.down = new Error('connection refused');
    const cp = await log.checkpoint();
    const held = await auditRejection(log.append(verdict()));
    expect(held.code).toBe('ANCHOR_UNAVAILABLE');
    expect(held.message).toContain(`checkpoint seq ${cp?.seq}`);
    expect(warnings.join('\n')).toMatch(
      /the audit anchor has not taken checkpoint seq \d+ \(connection refused\): nothing more is recorded, so nothing is permitted, until it does; retrying/,
    );

    anchor.down = undefined;
    await anchor.tookThrough(cp?.seq as number);
    await waitForAppend(log);
    expect(warnings.at(-1)).toBe(`the audit anchor took checkpoint seq ${cp?.seq}: appends resume`);
    await log.close();
  });

  it('the gate refuses every call (STORE_UNAVAILABLE) while the anchor is down, and permits again once it is back', async () => {
    const anchor = new MemoryAnchor();
    const log = await openLog(fresh(), { checkpointEvery: { entries: 1_000, ms: Infinity }, anchor });
    const gate = Gate.fromDict(
      { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read_*' }] }] },
      { audit: log, drift: false },
    );
    const call = { principalId: 'a', principalKind: 'agent' as const, actionName: 'fs.read_file', sessionId: 's' };
    expect((await gate.evaluate(call)).kind).toBe('permit');
    anchor.down = new Error('ECONNREFUSED');
    await log.checkpoint();
    const refused = await gate.evaluate(call);
    expect(refused).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE' });
    anchor.down = undefined;
    await anchor.tookThrough(0);
    await waitForAppend(log);
    expect((await gate.evaluate(call)).kind).toBe('permit');
    await gate.close();
    await log.close();
  });

  it('opens while the anchor is unreachable, holding appends until the reopen check passes', async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    await writeAnchored(path, anchor, ['fs.read_file']);
    anchor.down = new Error('timeout');
    const log = await openLog(path, { anchor });
    expect((await auditRejection(log.append(verdict()))).code).toBe('ANCHOR_UNAVAILABLE');
    const callsBefore = anchor.calls;
    anchor.down = undefined;
    await waitForAppend(log);
    expect(anchor.calls).toBeGreaterThan(callsBefore);
    await log.close();
  });

  it('stops for good when the anchor holds a later checkpoint of this log (another copy ran ahead)', async () => {
    const anchor = new MemoryAnchor();
    const log = await openLog(fresh(), { checkpointEvery: { entries: 1_000, ms: Infinity }, anchor });
    await log.append(verdict());
    anchor.newest.set(log.logId, { logId: log.logId, seq: 1_000, headHash: 'B'.repeat(43), signature: 'x', time: 1 });
    await log.checkpoint();
    const err = await auditRejection(log.append(verdict()));
    expect(err.code).toBe('TRUNCATED');
    expect(err.message).toMatch(/holds checkpoint seq 1000 .* the log was cut back/);
    await expect(log.close()).rejects.toMatchObject({ code: 'TRUNCATED' });
  });
});

describe('verifyAuditLog with an anchor', () => {
  it('says which records the anchor does not vouch for yet, and requireSealed fails on them', async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const log = await openLog(path, { checkpointEvery: { entries: 1_000, ms: Infinity }, anchor });
    await log.append(verdict());
    await log.checkpoint();
    anchor.down = new Error('down');
    await log.append(verdict());
    await log.checkpoint(); // sealed locally, never anchored
    await log.close(); // no more retries: the anchor never gets that checkpoint
    anchor.down = undefined;
    const report = await verifyAuditLog(path, keys(), { anchor });
    expect(report.unsealed).toBe(0);
    expect(report.witness?.unanchored).toBe(2);
    const err = await auditRejection(verifyAuditLog(path, keys(), { anchor, requireSealed: true }));
    expect(err.code).toBe('UNSEALED');
    expect(err.reason).toMatch(
      /2 records \(seq 3\.\.4\) are after the newest checkpoint the audit anchor holds \(seq 2\): sealed only locally/,
    );
  });

  it('fails a log the anchor has never heard of, and reports an unreachable anchor as nothing checked', async () => {
    const path = fresh();
    await writeAnchored(path, new MemoryAnchor(), ['fs.read_file']);
    expect((await auditRejection(verifyAuditLog(path, keys(), { anchor: new MemoryAnchor() }))).code).toBe('UNANCHORED');
    const down = new MemoryAnchor();
    down.down = new Error('ECONNREFUSED');
    const err = await auditRejection(verifyAuditLog(path, keys(), { anchor: down }));
    expect(err.code).toBe('ANCHOR_UNAVAILABLE');
    expect(err.message).toContain('nothing was checked against it');
  });

  it("tells a forged anchor claim beyond the log's end (not signed by the log's key) from a cut", async () => {
    const anchor = new MemoryAnchor();
    const path = fresh();
    const ls = await writeAnchored(path, anchor, ['fs.read_file']);
    const logId = parse(ls[0] as string).log as string;
    const claim = { logId, seq: 99, headHash: 'C'.repeat(43), time: 5 };
    const other = KeyPair.generate();
    const signature = await signEnvelope(
      other,
      'hybrid',
      CHECKPOINT_DOMAIN,
      checkpointMessage({ log: logId, size: 99, head: claim.headHash, time: 5 }),
    );
    await anchor.record({ ...claim, signature });
    const err = await auditRejection(verifyAuditLog(path, keys(), { anchor }));
    expect(err.code).toBe('ANCHOR_MISMATCH');
    expect(err.reason).toMatch(/beyond the log's end .* its signature does not verify with these keys/);
  });
});

/** Appends until the log takes one (the anchor's retry runs on its own timer): an event, not a sleep. */
async function waitForAppend(log: AuditLog): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      await log.append(verdict());
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ANCHOR_UNAVAILABLE') throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error('the log never took appends again');
}
