// What a server sends of its own accord, through the real proxy process: a log line carrying a
// (fake) AWS key reaches the client redacted, and the audit log records where it was found.
import { join } from 'node:path';
import { LoggingMessageNotificationSchema, type LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditLog, verifyAuditLog } from '../../src/audit/index.ts';
import type { PublicKeyBundle } from '../../src/crypto/index.ts';
import { cleanup, keygen, POISONED, q, read, startProxy, tempDir, textOf, waitFor, write, type RunningProxy } from './proxy-harness.ts';

const FAKE_KEY = `AKIA${'ZP3T5W7Y'.repeat(2)}`;

describe('server-initiated messages through the real proxy (a leaky server)', () => {
  let dir: string;
  let proxy: RunningProxy;
  const logs: LoggingMessageNotification['params'][] = [];

  beforeAll(async () => {
    dir = tempDir();
    await keygen(dir);
    write(
      join(dir, 'policy.toml'),
      `[[policy]]\nname = "fx"\neffect = "permit"\nconditions = [{ action = "fx.*" }]\n\n[[screen]]\nname = "no-keys"\nactions = ["fx.*"]\ndetectors = ["aws_access_key"]\nmode = "redact"\n`,
    );
    const config = write(
      join(dir, 'kavach.toml'),
      `[gate]\npolicy = "policy.toml"\n[identity]\nprincipal_id = "dev"\nprincipal_kind = "user"\n[keys]\npath = "keys/secret.key"\n[audit]\npath = "audit/mcp.jsonl"\n[tools]\npinning = false\n[servers.fx]\ncommand = ${q(process.execPath)}\nargs = [${q(POISONED)}]\nenv = { FIXTURE_CLEAN = "1", FIXTURE_LOG_LEAK = "1" }\n`,
    );
    proxy = await startProxy(config);
    proxy.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  it('passes the log line on redacted and records the finding, never the key', async () => {
    const result = await waitFor('the shout tool', async () => {
      const r = await proxy.client.callTool({ name: 'fx__shout', arguments: {} }).catch(() => undefined);
      return r && !r.isError ? r : undefined;
    });
    expect(textOf(result)).toBe('shouted');
    const line = await waitFor('the log line', async () => logs.find((l) => l.logger === 'fx'));
    expect(line.data).toBe('using [REDACTED:aws_access_key] for the upload');
    expect(proxy.stderr()).toContain('upstream fx: notifications/message: aws_access_key at /data; redacted');
    expect(proxy.stderr()).not.toContain(FAKE_KEY);

    await proxy.close();
    const logPath = join(dir, 'audit/mcp.jsonl');
    const keys = JSON.parse(read(join(dir, 'keys/public.json'))) as PublicKeyBundle;
    const verified = await verifyAuditLog(logPath, keys);
    expect(verified.signaturesChecked).toBe(true);
    expect(verified.unsealed).toBe(0);
    const { records } = await readAuditLog(logPath);
    expect(records.filter((r) => r.type === 'kavach.mcp_screened')).toMatchObject([
      {
        server: 'fx',
        method: 'notifications/message',
        findings: [{ screen: 'no-keys', detector: 'aws_access_key', path: '/data', count: 1 }],
      },
    ]);
    expect(read(logPath)).not.toContain(FAKE_KEY);
  }, 60_000);
});
