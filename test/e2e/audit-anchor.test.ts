import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/index.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { encodeKeyPart } from '../../src/redis/keys.ts';
import { RedisAuditAnchor } from '../../src/redis/index.ts';
import { freePort, REDIS_URL, skipRedis } from '../redis/redis-harness.ts';
import { cleanup, FIXTURE, keygen, q, runCli, startProxy, tempDir, textOf, waitFor, write } from './proxy-harness.ts';

/** The CLI and the proxy use the default key prefix: each test removes its own log ids' keys. */
const logIds: string[] = [];
afterAll(async () => {
  if (skipRedis || logIds.length === 0) return;
  const client = new Redis(REDIS_URL);
  try {
    await client.del(...logIds.flatMap((id) => [`kavach:al:${encodeKeyPart(id)}`, `kavach:ah:${encodeKeyPart(id)}`]));
  } finally {
    client.disconnect();
  }
});

const parse = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>;
const linesOf = (path: string): string[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);

describe.skipIf(skipRedis)('kavach audit verify --anchor redis://… (the real CLI process)', () => {
  let dir: string;
  let keysPath: string;
  let logPath: string;
  let intact: string[];

  beforeAll(async () => {
    dir = tempDir();
    const kp = KeyPair.generate();
    keysPath = write(join(dir, 'public.json'), JSON.stringify(kp.publicKeys()));
    logPath = join(dir, 'audit.jsonl');
    const anchor = new RedisAuditAnchor(REDIS_URL);
    const log = await AuditLog.open(logPath, { keyPair: kp, mode: 'hybrid', anchor, checkpointEvery: { entries: 4, ms: Infinity } });
    logIds.push(log.logId);
    const actions = ['fs.read_file', 'fs.list', 'fs.read_file', 'fs.read_file', 'bank.transfer', 'fs.read_file', 'fs.list'];
    for (const [i, action] of actions.entries()) {
      await log.append({
        type: 'verdict',
        time: Date.now(),
        evaluationId: `e-${i}`,
        principal: 'agent',
        principalKind: 'agent',
        action,
        verdict: 'permit',
        policy: 'p',
        args: { i },
      });
    }
    await log.close();
    await anchor.close();
    intact = linesOf(logPath);
  }, 60_000);
  afterAll(() => cleanup(dir));

  it('an intact log: ok against the anchor, and --strict passes', async () => {
    const r = await runCli(['audit', 'verify', logPath, '--keys', keysPath, '--anchor', REDIS_URL, '--strict']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain(`${logPath}: ok`);
    expect(r.stdout).toContain(`anchored (redis ${new URL(REDIS_URL).host}): the log is not cut back and matches the`);
    expect(r.stdout).toMatch(/matches the \d+ checkpoints the anchor holds, through seq \d+; nothing after it/);
  }, 60_000);

  it('a log cut back to an earlier checkpoint (seal file rebuilt): ok on its local seal, which says what it cannot prove; FAILED with --anchor', async () => {
    const cut = join(dir, 'cut.jsonl');
    const transfer = intact.findIndex((l) => l.includes('bank.transfer'));
    const at = intact
      .slice(0, transfer)
      .map((l) => parse(l).type)
      .lastIndexOf('checkpoint');
    writeFileSync(
      cut,
      intact
        .slice(0, at + 1)
        .map((l) => `${l}\n`)
        .join(''),
    );
    writeFileSync(`${cut}.seal`, `${intact[at]}\n`);

    const local = await runCli(['audit', 'verify', cut, '--keys', keysPath]);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toContain('seal matches');
    expect(local.stdout).toContain(
      'local seal only: shows the records are unchanged since the key sealed them; it cannot show the log was not cut back',
    );

    const anchored = await runCli(['audit', 'verify', cut, '--keys', keysPath, '--anchor', REDIS_URL]);
    expect(anchored.code, anchored.stderr).toBe(1);
    expect(anchored.stdout).toMatch(
      new RegExp(
        `${cut.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: FAILED at record \\d+ \\[TRUNCATED\\] the log ends at seq ${at}, but the audit anchor holds its checkpoint at seq ${parse(intact.at(-1) as string).seq}`,
      ),
    );

    const json = await runCli(['audit', 'verify', cut, '--keys', keysPath, '--anchor', REDIS_URL, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject([{ file: cut, ok: false, code: 'TRUNCATED' }]);
  }, 90_000);

  it('an anchor that cannot be reached: exit 2, one line, never ok', async () => {
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    const r = await runCli(['audit', 'verify', logPath, '--keys', keysPath, '--anchor', nowhere]);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toContain('ok');
    expect(r.stderr).toMatch(/kavach audit verify: the audit anchor could not be read, so nothing was checked against it/);
  }, 60_000);
});

describe.skipIf(skipRedis)('kavach mcp with [audit] anchor', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    await keygen(dir);
    write(join(dir, 'policy.toml'), '[[policy]]\nname = "fx"\neffect = "permit"\nconditions = [{ action = "fx.pid" }]\n');
    write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
[identity]
principal_id = "alice-laptop"
principal_kind = "agent"
[keys]
path = "keys/secret.key"
[audit]
path = "audit/mcp.jsonl"
anchor = ${q(REDIS_URL)}
[servers.fx]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
`,
    );
  }, 60_000);
  afterAll(() => cleanup(dir));

  it("sends the log's checkpoints to Redis: after shutdown the log verifies against it, every record anchored", async () => {
    const proxy = await startProxy(join(dir, 'kavach.toml'));
    const result = await proxy.client.callTool({ name: 'fx__pid', arguments: {} });
    expect(result.isError, textOf(result)).toBeFalsy();
    await proxy.close();
    const logPath = join(dir, 'audit/mcp.jsonl');
    const last = await waitFor('the final checkpoint', () => {
      const final = parse(linesOf(logPath).at(-1) as string);
      return final.type === 'checkpoint' ? final : undefined;
    });
    logIds.push(last.log as string);
    const verified = await waitFor(
      'the final checkpoint anchored',
      async () => {
        const r = await runCli(['audit', 'verify', logPath, '--keys', join(dir, 'keys/public.json'), '--anchor', REDIS_URL, '--strict']);
        return r.code === 0 ? r : undefined;
      },
      60_000,
    );
    expect(verified.stdout).toContain(`through seq ${last.seq}; nothing after it`);
  }, 120_000);
});
