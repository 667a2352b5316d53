import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditLog, verifyAuditLog } from '../../src/audit/index.ts';
import type { PublicKeyBundle } from '../../src/crypto/index.ts';
import { cleanup, EVERYTHING, keygen, q, startProxy, tempDir, textOf, waitFor, write, type RunningProxy } from './proxy-harness.ts';

// Built at run time (AKIA + 16 base32 characters): a fake key, never a real one.
const FAKE_KEY = `AKIA${'ZP3T5W7Y'.repeat(2)}`;
const TICKET = `BLOCKME-${'42'.repeat(2)}`;

describe('result screening through the real proxy process (server-everything echo)', () => {
  let dir: string;
  let proxy: RunningProxy;

  beforeAll(async () => {
    dir = tempDir();
    await keygen(dir);
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "echo"
effect = "permit"
conditions = [{ action = "everything.echo" }]

[[screen]]
name = "no-keys"
actions = ["everything.*"]
detectors = ["aws_access_key"]
mode = "redact"

[[screen]]
name = "no-tickets"
detectors = []
patterns = [ { name = "ticket", regex = "BLOCKME-[0-9]{4}" } ]
mode = "block"
`,
    );
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
mode = "hybrid"
[audit]
path = "audit/mcp.jsonl"
[servers.everything]
command = ${q(process.execPath)}
args = [${q(EVERYTHING)}, "stdio"]
`,
    );
    proxy = await startProxy(join(dir, 'kavach.toml'));
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  it('redacts the key, blocks the ticket, and the audit log holds where but never what', async () => {
    const redacted = (await proxy.client.callTool({
      name: 'everything__echo',
      arguments: { message: `key ${FAKE_KEY} here` },
    })) as CallToolResult;
    expect(redacted.isError).toBeFalsy();
    expect(textOf(redacted)).toContain('key [REDACTED:aws_access_key] here');
    expect(JSON.stringify(redacted)).not.toContain(FAKE_KEY);

    const blocked = (await proxy.client.callTool({
      name: 'everything__echo',
      arguments: { message: `ticket ${TICKET}` },
    })) as CallToolResult;
    expect(blocked.isError).toBe(true);
    expect(textOf(blocked)).toContain('[OUTPUT_BLOCKED]');
    expect(JSON.stringify(blocked)).not.toContain(TICKET);
    expect(blocked._meta?.['dev.kavach/verdict']).toMatchObject({ kind: 'refuse', code: 'OUTPUT_BLOCKED' });

    await proxy.close();
    const logPath = join(dir, 'audit/mcp.jsonl');
    const keys = JSON.parse(readFileSync(join(dir, 'keys/public.json'), 'utf8')) as PublicKeyBundle;
    await waitFor('the sealed log', async () => {
      const r = await verifyAuditLog(logPath, keys);
      return r.unsealed === 0 ? r : undefined;
    });
    const { records } = await readAuditLog(logPath);
    const outcomes = records.filter((r) => r.type === 'outcome');
    expect(outcomes).toMatchObject([
      { outcome: 'ok', findings: [{ screen: 'no-keys', detector: 'aws_access_key', count: 1 }] },
      { withheld: true, findings: [{ screen: 'no-tickets', detector: 'ticket', count: 1 }] },
    ]);
    // The log keeps argument hashes, not values: neither secret is anywhere in it.
    const raw = readFileSync(logPath, 'utf8');
    expect(raw).not.toContain(FAKE_KEY);
    expect(raw).not.toContain(TICKET);
  }, 60_000);
});
