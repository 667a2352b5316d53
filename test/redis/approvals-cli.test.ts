import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { RedisApprovalStore } from '../../src/redis/index.ts';
import { runCli } from '../e2e/proxy-harness.ts';
import { cleanup, REDIS_URL, skipRedis, uniquePrefix } from './redis-harness.ts';

const POLICY = `
[[policy]]
name = "refunds"
description = "big refunds"
effect = "approve"
conditions = [ { action = "pay.refund" } ]
approval = { approvers = ["role:finance"] }
`;
const CALL = {
  principalId: 'bot',
  principalKind: 'agent' as const,
  actionName: 'pay.refund',
  params: { amount: 900 },
  sessionId: 's-1',
  audience: 'pay',
};

describe.skipIf(skipRedis)('kavach approvals over Redis, with no proxy on this host', () => {
  const prefix = uniquePrefix('approvals-cli');
  let dir: string;
  let store: RedisApprovalStore;
  let gate: Gate;
  let config: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kv-cli-redis-'));
    config = join(dir, 'kavach.toml');
    writeFileSync(
      config,
      `
[gate]
policy = "policy.toml"
[redis]
url = "${REDIS_URL}"
key_prefix = "${prefix}"
command_timeout_ms = 2000
[approvals]
socket_dir = "sockets"
[[approvals.approvers]]
principal_id = "fin"
roles = ["finance"]
[servers.pay]
command = "unused"
`,
    );
    store = new RedisApprovalStore(REDIS_URL, { keyPrefix: prefix, commandTimeoutMs: 2000 });
    gate = Gate.fromToml(POLICY, { stores: { approval: store } });
  });

  afterAll(async () => {
    await gate.close();
    await store.close();
    await cleanup(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists, shows and grants a request another replica made; the call is then permitted there', async () => {
    const first = await gate.evaluate(CALL);
    if (first.kind !== 'refuse' || !first.approval) throw new Error('expected APPROVAL_REQUIRED');
    const id = first.approval.id;
    const list = await runCli(['approvals', 'list', '--config', config]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(id);
    const show = await runCli(['approvals', 'show', id, '--config', config, '--json']);
    expect(JSON.parse(show.stdout)).toMatchObject({ id, status: 'pending', args: { amount: 900 } });
    const refused = await runCli(['approvals', 'grant', id, '--config', config, '--as', 'eve']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('NOT_AN_APPROVER');
    const grant = await runCli(['approvals', 'grant', id, '--config', config, '--as', 'fin', '--note', 'via redis']);
    expect(grant.code, grant.stderr).toBe(0);
    expect(grant.stderr).toContain('decided through Redis');
    expect((await gate.approvals.get(id))?.decisions[0]).toMatchObject({ approver: { id: 'fin', roles: ['finance'] }, note: 'via redis' });
    expect((await gate.evaluate(CALL)).kind).toBe('permit');
  });
});

describe('kavach approvals with nothing to reach', () => {
  it('says no proxy answers (exit 2) when there is no socket and no [redis]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-cli-none-'));
    try {
      const config = join(dir, 'kavach.toml');
      writeFileSync(config, '[gate]\npolicy = "p.toml"\n[servers.x]\ncommand = "unused"\n');
      const list = await runCli(['approvals', 'list', '--config', config]);
      expect(list.code).toBe(2);
      expect(list.stderr).toContain('no running proxy answers');
      const usage = await runCli(['approvals', 'grant', '--config', config]);
      expect(usage.code).toBe(2);
      expect((await runCli(['approvals', 'list', '--config', config, '--status', 'maybe'])).stderr).toContain('--status must be one of');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
