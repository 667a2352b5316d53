import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureDigest, type AnchorCheckpoint, type AnchorResult } from '../../src/audit/anchor.ts';
import { verifyAuditLog } from '../../src/audit/index.ts';
import { Gate } from '../../src/engine/gate.ts';
import { encodeKeyPart } from '../../src/redis/keys.ts';
import { RedisAuditAnchor } from '../../src/redis/index.ts';
import { auditRejection, key, lines, logNamer, openLog, parse, tempDir, verdict, writeLines } from '../audit/helpers.ts';
import { cleanup, freePort, PrivateRedis, REDIS_URL, skipRedis, uniquePrefix, waitUntil } from './redis-harness.ts';

const keyPrefix = uniquePrefix('audit-anchor');
afterAll(() => cleanup(keyPrefix));

const dir = tempDir();
const fresh = logNamer(dir, 'anchored');
const logIds = () => `log-${randomBytes(6).toString('base64url')}`;
const head = (n: number): string => Buffer.alloc(32, n).toString('base64url');
const checkpoint = (logId: string, seq: number, variant = 0): AnchorCheckpoint => ({
  logId,
  seq,
  headHash: head(seq + variant * 1000),
  signature: `sig-${seq}-${variant}`,
  time: 1_000 + seq,
});

describe.skipIf(skipRedis)('RedisAuditAnchor', () => {
  let anchor: RedisAuditAnchor;
  beforeAll(() => {
    anchor = new RedisAuditAnchor(REDIS_URL, { keyPrefix });
  });
  afterAll(() => anchor.close());

  it('takes a later checkpoint, refuses to go backwards or to replace one at the same seq, and takes a retry of the same one', async () => {
    const logId = logIds();
    expect(await anchor.latest(logId)).toBeUndefined();
    expect(await anchor.record(checkpoint(logId, 10))).toEqual({ accepted: true });
    expect(await anchor.record(checkpoint(logId, 5))).toEqual({ accepted: false, reason: 'behind', held: { seq: 10, headHash: head(10) } });
    expect(await anchor.record(checkpoint(logId, 10, 1))).toEqual({
      accepted: false,
      reason: 'conflict',
      held: { seq: 10, headHash: head(10) },
    });
    expect(await anchor.record(checkpoint(logId, 10))).toEqual({ accepted: true });
    expect(await anchor.latest(logId)).toEqual(checkpoint(logId, 10));
    expect(await anchor.record(checkpoint(logId, 20))).toEqual({ accepted: true });
    expect(await anchor.history(logId, 0, 100)).toEqual([
      { seq: 10, headHash: head(10), time: 1_010, signatureDigest: signatureDigest('sig-10-0') },
      { seq: 20, headHash: head(20), time: 1_020, signatureDigest: signatureDigest('sig-20-0') },
    ]);
    expect(await anchor.history(logId, 11, 20)).toHaveLength(1);
  });

  it('never goes backwards, whatever order checkpoints arrive in (property, against a model)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 1 })), { minLength: 1, maxLength: 25 }),
        async (calls) => {
          const logId = logIds();
          let held: AnchorCheckpoint | undefined;
          const taken: number[] = [];
          for (const [seq, variant] of calls) {
            const c = checkpoint(logId, seq, variant);
            const result = await anchor.record(c);
            let expected: AnchorResult;
            if (held === undefined || seq > held.seq) expected = { accepted: true };
            else if (seq < held.seq) expected = { accepted: false, reason: 'behind', held: { seq: held.seq, headHash: held.headHash } };
            else if (c.headHash === held.headHash && c.signature === held.signature) expected = { accepted: true };
            else expected = { accepted: false, reason: 'conflict', held: { seq: held.seq, headHash: held.headHash } };
            expect(result).toEqual(expected);
            if (held === undefined || seq > held.seq) {
              held = c;
              taken.push(seq);
            }
          }
          expect(await anchor.latest(logId)).toEqual(held);
          expect((await anchor.history(logId, 0, 1_000)).map((h) => h.seq)).toEqual(taken);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('concurrent writers on their own connections: exactly the highest ends up newest, and history only rises', async () => {
    const logId = logIds();
    const writers = Array.from({ length: 4 }, () => new RedisAuditAnchor(REDIS_URL, { keyPrefix }));
    try {
      const seqs = Array.from({ length: 40 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
      await Promise.all(seqs.map((seq, i) => (writers[i % writers.length] as RedisAuditAnchor).record(checkpoint(logId, seq))));
      expect((await anchor.latest(logId))?.seq).toBe(40);
      const history = (await anchor.history(logId, 0, 100)).map((h) => h.seq);
      expect(history).toEqual([...history].sort((a, b) => a - b));
      expect(history.at(-1)).toBe(40);
    } finally {
      await Promise.all(writers.map((w) => w.close()));
    }
  });

  it('reads a history longer than one page', async () => {
    const logId = logIds();
    const client = new Redis(REDIS_URL);
    try {
      const key = `${keyPrefix}ah:${encodeKeyPart(logId)}`;
      const args: (string | number)[] = [];
      for (let seq = 1; seq <= 5_003; seq++) args.push(seq, `${seq} ${head(seq % 200)} ${seq} ${signatureDigest(String(seq))}`);
      await client.zadd(key, ...args);
    } finally {
      client.disconnect();
    }
    const history = await anchor.history(logId, 1, 10_000);
    expect(history).toHaveLength(5_003);
    expect(history.map((h) => h.seq)).toEqual(Array.from({ length: 5_003 }, (_, i) => i + 1));
  });

  it("keeps one log id out of another's keys (ids are encoded)", async () => {
    const a = `x:${randomBytes(4).toString('hex')}`;
    await anchor.record(checkpoint(a, 3));
    expect(await anchor.latest(`${a}:`)).toBeUndefined();
    expect(await anchor.latest(a.replace('x:', 'x'))).toBeUndefined();
  });
});

/** Lines 0..`at` (a checkpoint) kept, seal file rebuilt from it: what the log's host can do with the key. */
function cutBack(path: string, ls: readonly string[], at: number): void {
  writeLines(path, ls.slice(0, at + 1));
  writeFileSync(`${path}.seal`, `${ls[at]}\n`);
}

const EVERY_4 = { checkpointEvery: { entries: 4, ms: Infinity } };
const ACTIONS = ['fs.read_file', 'fs.list', 'fs.read_file', 'fs.read_file', 'bank.transfer', 'fs.read_file', 'fs.list', 'fs.read_file'];

describe.skipIf(skipRedis)('an audit log anchored in Redis', () => {
  let anchor: RedisAuditAnchor;
  beforeAll(() => {
    anchor = new RedisAuditAnchor(REDIS_URL, { keyPrefix });
  });
  afterAll(() => anchor.close());

  async function anchoredLog(): Promise<{ path: string; ls: string[]; cutAt: number }> {
    const path = fresh();
    const log = await openLog(path, { ...EVERY_4, anchor });
    for (const action of ACTIONS) await log.append(verdict({ action }));
    await log.close();
    const ls = lines(path);
    const transfer = ls.findIndex((l) => l.includes('"action":"bank.transfer"'));
    const cutAt = ls
      .slice(0, transfer)
      .map((l) => parse(l).type)
      .lastIndexOf('checkpoint');
    return { path, ls, cutAt };
  }

  it('a log cut back to an earlier checkpoint: passes without the anchor (the local seal is rebuilt from the log: the gap), fails TRUNCATED with it', async () => {
    const { path, ls, cutAt } = await anchoredLog();
    cutBack(path, ls, cutAt);
    const local = await verifyAuditLog(path, key().publicKeys());
    expect(local.anchored).toBe(true);
    expect(local.byAction['bank.transfer']).toBeUndefined();

    const err = await auditRejection(verifyAuditLog(path, key().publicKeys(), { anchor }));
    expect(err.code).toBe('TRUNCATED');
    expect(err.reason).toContain(`the audit anchor holds its checkpoint at seq ${parse(ls.at(-1) as string).seq}`);
  });

  it('a log rewritten from an earlier checkpoint and sealed again (its checkpoints replaced) fails ANCHOR_MISMATCH', async () => {
    const { path, ls, cutAt } = await anchoredLog();
    cutBack(path, ls, cutAt);
    const forged = await openLog(path, EVERY_4);
    for (let i = 0; i < ACTIONS.length + 4; i++) await forged.append(verdict({ action: 'fs.read_file' }));
    await forged.close();
    expect((await verifyAuditLog(path, key().publicKeys())).anchored).toBe(true);
    const err = await auditRejection(verifyAuditLog(path, key().publicKeys(), { anchor }));
    expect(err.code).toBe('ANCHOR_MISMATCH');
  });

  it('the writer refuses to continue a log cut back behind what Redis holds', async () => {
    const { path, ls, cutAt } = await anchoredLog();
    cutBack(path, ls, cutAt);
    expect((await auditRejection(openLog(path, { anchor }))).code).toBe('TRUNCATED');
  });

  it("a host that also sets the anchor's newest checkpoint back cannot reopen the cut log; lowering history scores as well still does not hide the cut", async () => {
    const { path, ls, cutAt } = await anchoredLog();
    cutBack(path, ls, cutAt);
    const cut = parse(ls[cutAt] as string);
    const logId = cut.log as string;
    const client = new Redis(REDIS_URL);
    try {
      // With the anchor's credentials but no right to delete (the ACL FORMAT.md recommends).
      await client.hset(`${keyPrefix}al:${encodeKeyPart(logId)}`, {
        seq: String(cut.seq),
        head: cut.head as string,
        time: String(cut.time),
        sig: cut.sig as string,
      });
      expect((await auditRejection(openLog(path, { anchor }))).code).toBe('TRUNCATED');
      const historyKey = `${keyPrefix}ah:${encodeKeyPart(logId)}`;
      for (const member of await client.zrange(historyKey, 0, -1)) await client.zadd(historyKey, -1, member);
    } finally {
      client.disconnect();
    }
    const err = await auditRejection(verifyAuditLog(path, key().publicKeys(), { anchor }));
    expect(err.code).toBe('TRUNCATED');
    expect(err.reason).toContain(`the audit anchor holds its checkpoint at seq ${parse(ls.at(-1) as string).seq}`);
  });

  it('an intact log verifies against Redis with every checkpoint matched', async () => {
    const { path, ls } = await anchoredLog();
    const report = await verifyAuditLog(path, key().publicKeys(), { anchor, requireSealed: true });
    expect(report.witness).toMatchObject({ matched: ls.filter((l) => parse(l).type === 'checkpoint').length, unanchored: 0 });
  });
});

describe.skipIf(skipRedis)('an audit log whose Redis anchor goes away', () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
  });
  afterAll(() => server.kill());

  it('the gate refuses while Redis cannot take the checkpoint, and permits again once it can, without a restart', async () => {
    const anchor = new RedisAuditAnchor(server.url, { commandTimeoutMs: 200 });
    const warnings: string[] = [];
    const log = await openLog(fresh(), { checkpointEvery: { entries: 1_000, ms: Infinity }, anchor, onWarning: (m) => warnings.push(m) });
    const gate = Gate.fromDict(
      { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read_*' }] }] },
      { audit: log, drift: false },
    );
    const call = { principalId: 'a', principalKind: 'agent' as const, actionName: 'fs.read_file', sessionId: 's' };
    try {
      expect((await gate.evaluate(call)).kind).toBe('permit');
      await server.kill();
      await log.checkpoint();
      expect(await gate.evaluate(call)).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE' });
      expect(warnings.join('\n')).toContain('the audit anchor has not taken checkpoint');

      await server.start();
      await waitUntil(async () => (await gate.evaluate(call)).kind === 'permit', 20_000, 'the gate never permitted again', 100);
      expect(warnings.at(-1)).toMatch(/the audit anchor took checkpoint seq \d+: appends resume/);
      expect((await anchor.latest(log.logId))?.seq).toBe(log.lastCheckpoint?.seq);
    } finally {
      await gate.close();
      await log.close();
      await anchor.close();
    }
  });
});
