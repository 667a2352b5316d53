import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditLog, verifyAuditLog } from '../../src/audit/index.ts';
import type { PublicKeyBundle } from '../../src/crypto/index.ts';
import {
  cleanup,
  keygen,
  POISONED,
  q,
  read,
  runCli,
  startProxy,
  tempDir,
  textOf,
  waitFor,
  write,
  type RunningProxy,
} from './proxy-harness.ts';

const FAKE_KEY = `AKIA${'ZP3T5W7Y'.repeat(2)}`;
/** What a terminal would act on or hide: C0/C1 controls (but newline), bidi, zero-width, tags. */
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}]/u;

describe('the tool-definition scan through the real proxy process (a malicious server)', () => {
  let dir: string;
  let config: string;
  let lateFlag: string;
  let proxy: RunningProxy;
  let listChanges = 0;

  beforeAll(async () => {
    dir = tempDir();
    lateFlag = join(dir, 'add-the-late-tool');
    await keygen(dir);
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "fx"
effect = "permit"
conditions = [{ action = "fx.*" }]

[[screen]]
name = "no-keys-to-the-model"
actions = ["fx.*"]
detectors = ["aws_access_key"]
mode = "redact"
`,
    );
    config = write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
[identity]
principal_id = "dev"
principal_kind = "user"
[keys]
path = "keys/secret.key"
[audit]
path = "audit/mcp.jsonl"
[tools]
pins_file = "state/pins.json"
[servers.fx]
command = ${q(process.execPath)}
args = [${q(POISONED)}]
env = { FIXTURE_LATE_FLAG = ${q(lateFlag)} }
`,
    );
    proxy = await startProxy(config);
    proxy.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanges++;
    });
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  const names = async () => (await proxy.client.listTools()).tools.map((t) => t.name).sort();
  const call = (name: string, args: Record<string, unknown> = {}) =>
    proxy.client.callTool({ name, arguments: args }) as Promise<CallToolResult>;

  it('hides the poisoned and the hidden-character tools at first pin and refuses their calls TOOL_SUSPECT', async () => {
    expect(await names()).toEqual(['fx__status', 'fx__weather']);
    expect(proxy.stderr()).toContain('tool fx.add was seen for the first time with a suspect definition');
    expect(proxy.stderr()).toContain('tool fx.lookup was seen for the first time with a suspect definition');

    const refused = await call('fx__add', { a: 2, b: 3 });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('[TOOL_SUSPECT]');
    expect(textOf(refused)).toContain('hidden_instructions');
    // The model is told what kind of thing was found, never the poisoned text itself.
    expect(textOf(refused)).not.toContain('id_rsa');
    expect(refused._meta?.['dev.kavach/verdict']).toMatchObject({ kind: 'refuse', code: 'TOOL_SUSPECT' });
    const hidden = await call('fx__lookup', { word: 'x' });
    expect(hidden._meta?.['dev.kavach/verdict']).toMatchObject({ code: 'TOOL_SUSPECT' });
    expect(textOf(hidden)).toContain('bidi_control');
  });

  it('redacts the AWS key a result leaks, per the [[screen]] policy', async () => {
    const result = await call('fx__status');
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toContain('aws_access_key_id=[REDACTED:aws_access_key]');
    expect(JSON.stringify(result)).not.toContain(FAKE_KEY);
  });

  it('approve-tools shows each finding escaped; the approved tool is then listed and callable, the other still held', async () => {
    const listed = await runCli(['mcp', 'approve-tools', '--config', config, '--list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('fx.add is held: the tool-definition scan found something in it:');
    expect(listed.stdout).toContain('found hidden_instructions in /description');
    expect(listed.stdout).toContain('found concealment in /description');
    expect(listed.stdout).toContain('found credential_access in /description');
    expect(listed.stdout).toContain('<IMPORTANT>');
    expect(listed.stdout).toContain('fx.lookup is held');
    expect(listed.stdout).toContain('found tag_characters in /description');
    expect(listed.stdout).toContain('Looks up a word\\u200b in the dictionary.\\u202e\\u{e0049}\\u{e0047}');
    expect(listed.stdout).not.toMatch(UNSAFE);

    const approved = await runCli(['mcp', 'approve-tools', '--config', config, 'fx.add']);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('approved 1 tool: fx.add');
    await waitFor('the approval to reach the running proxy', async () => ((await names()).includes('fx__add') ? true : undefined));
    expect(await names()).toEqual(['fx__add', 'fx__status', 'fx__weather']);
    expect(textOf(await call('fx__add', { a: 2, b: 3 }))).toBe('5');
  });

  it('holds a tool the server adds after its list was pinned (a policy glob covers it) until it is approved', async () => {
    const changesBefore = listChanges;
    write(lateFlag, 'now');
    await waitFor('the late tool to be held', () =>
      proxy.stderr().includes('tool fx.backup appeared after the tools of its server were pinned'),
    );
    await waitFor('a tools/list_changed notification', () => listChanges > changesBefore);
    expect(await names()).not.toContain('fx__backup');
    const refused = await call('fx__backup');
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('[TOOL_CHANGED]');
    expect(textOf(refused)).toContain("'fx.backup' appeared after the tools of server 'fx' were approved");

    const listed = await runCli(['mcp', 'approve-tools', '--config', config, '--list']);
    expect(listed.stdout).toContain('fx.backup is new: its server listed it after its tools were approved:');
    const approved = await runCli(['mcp', 'approve-tools', '--config', config, 'fx.backup']);
    expect(approved.code, approved.stderr).toBe(0);
    await waitFor('the late tool to be listed', async () => ((await names()).includes('fx__backup') ? true : undefined));
    expect(textOf(await call('fx__backup'))).toBe('backed up');
    // fx.lookup was never approved: still held.
    expect(await names()).not.toContain('fx__lookup');
  });

  it("records the proxy's TOOL_SUSPECT and TOOL_CHANGED refusals in the signed audit log", async () => {
    await proxy.close();
    const logPath = join(dir, 'audit/mcp.jsonl');
    const keys = JSON.parse(readFileSync(join(dir, 'keys/public.json'), 'utf8')) as PublicKeyBundle;
    await waitFor('the sealed log', async () => {
      const r = await verifyAuditLog(logPath, keys);
      return r.unsealed === 0 ? r : undefined;
    });
    const { records } = await readAuditLog(logPath);
    const refusals = records.filter((r) => r.type === 'kavach.mcp_refusal');
    expect(refusals).toMatchObject([
      { action: 'fx.add', code: 'TOOL_SUSPECT' },
      { action: 'fx.lookup', code: 'TOOL_SUSPECT' },
      { action: 'fx.backup', code: 'TOOL_CHANGED' },
    ]);
    expect(read(logPath)).not.toContain(FAKE_KEY);
    expect(existsSync(join(dir, 'state/pins.json'))).toBe(true);
  }, 30_000);
});
