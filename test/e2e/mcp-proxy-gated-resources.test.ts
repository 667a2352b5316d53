import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, EVERYTHING, keygen, q, read, startHttpProxy, tempDir, waitFor, write, type RunningHttpProxy } from './proxy-harness.ts';

const READER_TOKEN = 'reader-token-0123456789abcdef';
const OTHER_TOKEN = 'other-token-0123456789abcdef';

describe('kavach mcp --http with [gate] gate_resources: one token may read a resource, the other is refused', () => {
  let dir: string;
  let proxy: RunningHttpProxy;

  beforeAll(async () => {
    dir = tempDir();
    await keygen(dir);
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "reader-docs"
effect = "permit"
conditions = [{ identity_id = "reader" }, { action = "everything.resources/read" }, { resource = "demo://resource/static/document/*" }]
`,
    );
    write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
gate_resources = true
[keys]
path = "keys/secret.key"
[audit]
path = "audit/mcp.jsonl"
[servers.everything]
command = ${q(process.execPath)}
args = [${q(EVERYTHING)}, "stdio"]
[http]
[[http.clients]]
token = ${q(READER_TOKEN)}
principal_id = "reader"
principal_kind = "agent"
[[http.clients]]
token = ${q(OTHER_TOKEN)}
principal_id = "other"
principal_kind = "agent"
`,
    );
    proxy = await startHttpProxy(join(dir, 'kavach.toml'));
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  const connect = (token: string): Promise<Client> => proxy.connect(token, 'gated-e2e');

  it('lists and reads per principal; the refusal is a JSON-RPC error and lands in the audit log', async () => {
    const reader = await connect(READER_TOKEN);
    const listed = (await reader.listResources()).resources.map((r) => r.uri);
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((uri) => uri.startsWith('demo://resource/static/document/'))).toBe(true);
    const uri = listed[0] as string;
    const read1 = await reader.readResource({ uri });
    expect(read1.contents[0]?.uri).toBe(uri);
    // With keys, the read reached the server with a permit; the server ignores it, the read works.

    const other = await connect(OTHER_TOKEN);
    expect((await other.listResources()).resources).toEqual([]);
    expect((await other.listPrompts()).prompts).toEqual([]);
    const err = await other.readResource({ uri }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(ErrorCode.InvalidRequest);
    expect((err as McpError).message).toContain("for agent 'other'");
    expect(((err as McpError).data as Record<string, { code: string }>)['dev.kavach/verdict']?.code).toBe('NO_POLICY_MATCH');

    const promptErr = await other.getPrompt({ name: 'everything__simple-prompt' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((promptErr as McpError).code).toBe(ErrorCode.InvalidRequest);

    const records = await waitFor('the refusals in the audit log', () => {
      const lines = read(join(dir, 'audit/mcp.jsonl'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const found = lines.filter((l) => l.type === 'verdict' && String(l.action).startsWith('everything.'));
      return found.length >= 3 ? found : undefined;
    });
    expect(records.map((r) => [r.principal, r.action, r.verdict])).toEqual([
      ['reader', 'everything.resources/read', 'permit'],
      ['other', 'everything.resources/read', 'refuse'],
      ['other', 'everything.prompts/get', 'refuse'],
    ]);
  });
});
