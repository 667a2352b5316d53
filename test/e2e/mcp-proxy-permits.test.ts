import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditLog, verifyAuditLog } from '../../src/audit/index.ts';
import type { PublicKeyBundle } from '../../src/crypto/index.ts';
import {
  cleanup,
  FIXTURE,
  keygen,
  q,
  REPO,
  runCli,
  startProxy,
  tempDir,
  textOf,
  waitFor,
  write,
  type RunningProxy,
} from './proxy-harness.ts';

const EXAMPLE = join(REPO, 'examples/mcp/permit-checked-server.ts');

describe('signed permits and the audit log through the proxy', () => {
  let dir: string;
  let proxy: RunningProxy;
  let direct: Client | undefined;

  beforeAll(async () => {
    dir = tempDir();
    await keygen(dir);
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "notes"
effect = "permit"
conditions = [{ action = ["notes.add_note", "notes.read_note"] }, { param_max_length = { field = "text", max = 100 } }]

[[policy]]
name = "read-notes"
effect = "permit"
conditions = [{ action = "notes.read_note" }]

[[policy]]
name = "fx"
effect = "permit"
conditions = [{ action = ["fx.meta", "fx.fail", "fx.crash", "fx.pid"] }]
`,
    );
    write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
permit_ttl = "30s"
[identity]
principal_id = "alice-laptop"
principal_kind = "agent"
[keys]
path = "keys/secret.key"
mode = "hybrid"
[audit]
path = "audit/mcp.jsonl"
[servers.notes]
command = ${q(process.execPath)}
args = ["--import", "tsx", ${q(EXAMPLE)}, "--keys", ${q(join(dir, 'keys/public.json'))}, "--audience", "notes"]
cwd = ${q(REPO)}
[servers.fx]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
`,
    );
    proxy = await startProxy(join(dir, 'kavach.toml'));
  }, 60_000);

  afterAll(async () => {
    await direct?.close().catch(() => undefined);
    await proxy?.close();
    cleanup(dir);
  });

  it('forwards a signed permit in params._meta["dev.kavach/permit"]', async () => {
    const result = await proxy.client.callTool({ name: 'fx__meta', arguments: {} });
    const meta = JSON.parse(textOf(result)) as Record<string, unknown>;
    expect(meta['dev.kavach/permit']).toMatch(/^kv1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  it('the upstream accepts the permit with requirePermit and runs the tool', async () => {
    const added = await proxy.client.callTool({ name: 'notes__add_note', arguments: { title: 'groceries', text: 'milk' } });
    expect(added.isError, textOf(added)).toBeFalsy();
    expect(textOf(added)).toMatch(/^stored "groceries" for alice-laptop \(permit [\w-]+\)$/);
    expect(textOf(await proxy.client.callTool({ name: 'notes__read_note', arguments: { title: 'groceries' } }))).toBe('milk');
  });

  it('the upstream refuses a call that did not come through the gate, or with a permit for another tool', async () => {
    const permit = (JSON.parse(textOf(await proxy.client.callTool({ name: 'fx__meta', arguments: {} }))) as Record<string, string>)[
      'dev.kavach/permit'
    ];
    direct = new Client({ name: 'bypass', version: '1' });
    await direct.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', EXAMPLE, '--keys', join(dir, 'keys/public.json'), '--audience', 'notes'],
        cwd: REPO,
        stderr: 'ignore',
      }),
    );
    const bare = await direct.callTool({ name: 'add_note', arguments: { title: 't', text: 'x' } });
    expect(bare.isError).toBe(true);
    expect(textOf(bare)).toContain('Permit refused [BAD_FORMAT]');
    const borrowed = await direct.callTool({
      name: 'add_note',
      arguments: { title: 't', text: 'x' },
      _meta: { 'dev.kavach/permit': permit },
    });
    expect(borrowed.isError).toBe(true);
    expect(textOf(borrowed)).toMatch(/Permit refused \[(WRONG_AUDIENCE|WRONG_ACTION)\]/);
  });

  it('records every verdict and outcome; the log verifies after a clean shutdown', async () => {
    const refused = await proxy.client.callTool({ name: 'notes__add_note', arguments: { title: 'long', text: 'x'.repeat(200) } });
    expect(refused.isError).toBe(true);
    expect(textOf(await proxy.client.callTool({ name: 'fx__fail', arguments: {} }))).toBe('it failed');
    await proxy.client.callTool({ name: 'fx__crash', arguments: {} }).catch(() => undefined);
    const down = await waitFor('a call while fx is down', async () => {
      const r = await proxy.client.callTool({ name: 'fx__pid', arguments: {} });
      return textOf(r).includes('[UPSTREAM_UNAVAILABLE]') ? r : undefined;
    });
    expect(down.isError).toBe(true);
    const unknown = await proxy.client.callTool({ name: 'fx__delete_everything', arguments: { really: true } });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toBe(
      'Refused by policy [NO_POLICY_MATCH] proxy: no server offers a tool named "fx__delete_everything"; tools/list names the tools there are.',
    );
    expect(unknown._meta?.['dev.kavach/verdict']).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH', evaluator: 'proxy' });
    expect((await proxy.client.callTool({ name: 'nonesuch', arguments: {} })).isError).toBe(true);
    await proxy.close();
    const logPath = join(dir, 'audit/mcp.jsonl');
    const keys = JSON.parse(readFileSync(join(dir, 'keys/public.json'), 'utf8')) as PublicKeyBundle;
    const report = await waitFor('the sealed log', async () => {
      const r = await verifyAuditLog(logPath, keys);
      return r.unsealed === 0 ? r : undefined;
    });
    expect(report.checkpoints).toBeGreaterThan(0);
    const { records } = await readAuditLog(logPath);
    const verdicts = records.filter((r) => r.type === 'verdict') as unknown as {
      verdict: string;
      action: string;
      evaluationId: string;
      code?: string;
      session?: string;
      principal: string;
      args?: string;
    }[];
    const outcomes = records.filter((r) => r.type === 'outcome') as unknown as {
      evaluationId: string;
      outcome: string;
      session?: string;
      action?: string;
    }[];
    // One stdio client, one session: every verdict and every outcome carries it (no "(no session)" row in the report).
    const session = verdicts[0]?.session;
    expect(session).toMatch(/.+/);
    for (const r of [...verdicts, ...outcomes]) expect(r.session, r.evaluationId).toBe(session);
    for (const o of outcomes) expect(o.action).toBe(verdicts.find((v) => v.evaluationId === o.evaluationId)?.action);
    // Calls to tools no server offers are refused and recorded, in the caller's session.
    const unknownCalls = verdicts.filter((v) => v.action === 'fx.delete_everything' || v.action === 'nonesuch');
    expect(unknownCalls.map((v) => [v.action, v.verdict, v.code, v.principal])).toEqual([
      ['fx.delete_everything', 'refuse', 'NO_POLICY_MATCH', 'alice-laptop'],
      ['nonesuch', 'refuse', 'NO_POLICY_MATCH', 'alice-laptop'],
    ]);
    expect(unknownCalls[0]?.args).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(verdicts.some((v) => v.action === 'notes.add_note' && v.verdict === 'refuse' && v.code === 'NO_POLICY_MATCH')).toBe(true);
    const permitted = verdicts.filter((v) => v.verdict === 'permit');
    expect(permitted.length).toBeGreaterThanOrEqual(5);
    // Every permitted call has an outcome record, and each outcome follows its decision.
    for (const v of permitted) expect(outcomes.map((o) => o.evaluationId)).toContain(v.evaluationId);
    const failed = permitted.find((v) => v.action === 'fx.fail');
    expect(outcomes.find((o) => o.evaluationId === failed?.evaluationId)?.outcome).toBe('tool_error');
    expect(records.some((r) => r.type === 'kavach.mcp_refusal' && (r as unknown as { code: string }).code === 'UPSTREAM_UNAVAILABLE')).toBe(
      true,
    );
    const cli = await runCli(['audit', 'verify', logPath, '--keys', join(dir, 'keys/public.json')]);
    expect(cli.code, cli.stderr + cli.stdout).toBe(0);
  });
});
