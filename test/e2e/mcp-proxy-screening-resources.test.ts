import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditLog, verifyAuditLog } from '../../src/audit/index.ts';
import type { PublicKeyBundle } from '../../src/crypto/index.ts';
import { errorOf } from '../mcp-proxy/in-process.ts';
import { cleanup, keygen, q, REPO, startProxy, tempDir, waitFor, write, type RunningProxy } from './proxy-harness.ts';

// Built at run time (AKIA + 16 base32 characters): a fake key, never a real one.
const FAKE_KEY = `AKIA${'QR7VX2MB'.repeat(2)}`;
const TICKET = `BLOCKME-${'73'.repeat(2)}`;
const LEAKY = join(REPO, 'test/e2e/fixtures/leaky-server.mjs');

describe('result screening of resource reads, prompts and upstream errors through the real proxy (gate_resources)', () => {
  let dir: string;
  let proxy: RunningProxy;

  beforeAll(async () => {
    dir = tempDir();
    await keygen(dir);
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "leaky"
effect = "permit"
conditions = [{ action = ["leaky.lookup", "leaky.resources/read", "leaky.prompts/get"] }]

[[screen]]
name = "no-keys"
actions = ["leaky.*"]
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
gate_resources = true
[identity]
principal_id = "alice-laptop"
principal_kind = "agent"
[keys]
path = "keys/secret.key"
mode = "hybrid"
[audit]
path = "audit/mcp.jsonl"
[servers.leaky]
command = ${q(process.execPath)}
args = [${q(LEAKY)}]
env = { FIXTURE_SECRET = ${q(FAKE_KEY)}, FIXTURE_TICKET = ${q(TICKET)} }
`,
    );
    proxy = await startProxy(join(dir, 'kavach.toml'));
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  it('redacts a key in a resource read, and withholds a read that holds a ticket (OUTPUT_BLOCKED error)', async () => {
    const read = await proxy.client.readResource({ uri: 'leaky://config' });
    expect(read.contents).toEqual([
      { uri: 'leaky://config', mimeType: 'text/plain', text: '[default]\nvalue = [REDACTED:aws_access_key]\n' },
    ]);

    const blocked = await errorOf(proxy.client.readResource({ uri: 'leaky://ticket' }));
    expect(blocked.message).toContain(
      'Refused by policy [OUTPUT_BLOCKED] screen: the resource read was withheld: it contained text matching the pattern "ticket" (screen \'no-tickets\').',
    );
    expect(JSON.stringify(blocked)).not.toContain(TICKET);
    expect((blocked.data as Record<string, unknown>)['dev.kavach/verdict']).toMatchObject({ code: 'OUTPUT_BLOCKED', evaluator: 'screen' });
  }, 30_000);

  it('redacts a prompt: its text and its embedded resource', async () => {
    const prompt = await proxy.client.getPrompt({ name: 'leaky__config' });
    expect(JSON.stringify(prompt)).not.toContain(FAKE_KEY);
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Use [REDACTED:aws_access_key] to deploy.' });
    expect(prompt.messages[1]?.content).toMatchObject({ type: 'resource', resource: { text: 'value = [REDACTED:aws_access_key]' } });

    const blocked = await errorOf(proxy.client.getPrompt({ name: 'leaky__ticket' }));
    expect(blocked.message).toContain('[OUTPUT_BLOCKED] screen: the prompt was withheld');
    expect(JSON.stringify(blocked)).not.toContain(TICKET);
  }, 30_000);

  it("screens an upstream's JSON-RPC errors: message and data redacted, or the error withheld", async () => {
    const toolError = await errorOf(proxy.client.callTool({ name: 'leaky__lookup', arguments: { kind: 'key' } }));
    expect(toolError.message).toContain('no profile for [REDACTED:aws_access_key]');
    expect(toolError.data).toEqual({ tried: '[REDACTED:aws_access_key]' });

    const readError = await errorOf(proxy.client.readResource({ uri: 'leaky://broken' }));
    expect(readError.message).toContain('cannot read with key [REDACTED:aws_access_key]');
    expect(readError.data).toEqual({ key: '[REDACTED:aws_access_key]' });

    const withheld = await errorOf(proxy.client.callTool({ name: 'leaky__lookup', arguments: { kind: 'ticket' } }));
    expect(withheld.message).toContain("[OUTPUT_BLOCKED] screen: the server's error was withheld");
    expect(JSON.stringify(withheld)).not.toContain(TICKET);
    for (const err of [toolError, readError, withheld]) expect(JSON.stringify({ m: err.message, d: err.data })).not.toContain(FAKE_KEY);
  }, 30_000);

  it('records every finding in the audit log (outcome records of the permitting evaluations), never the values', async () => {
    await proxy.close();
    const logPath = join(dir, 'audit/mcp.jsonl');
    const keys = JSON.parse(readFileSync(join(dir, 'keys/public.json'), 'utf8')) as PublicKeyBundle;
    await waitFor('the sealed log', async () => {
      const r = await verifyAuditLog(logPath, keys);
      return r.unsealed === 0 ? r : undefined;
    });
    const { records } = await readAuditLog(logPath);
    const permits = new Set(records.flatMap((r) => (r.type === 'verdict' && r.verdict === 'permit' ? [r.evaluationId] : [])));
    const outcomes = records.filter((r) => r.type === 'outcome');
    const seen = outcomes.map((r) => ({
      action: r.action,
      detectors: [...new Set(r.findings?.map((f) => f.detector))],
      withheld: r.withheld === true,
      permitted: permits.has(r.evaluationId),
    }));
    expect(seen).toEqual(
      expect.arrayContaining([
        { action: 'leaky.resources/read', detectors: ['aws_access_key'], withheld: false, permitted: true },
        { action: 'leaky.resources/read', detectors: ['ticket'], withheld: true, permitted: true },
        { action: 'leaky.prompts/get', detectors: ['aws_access_key'], withheld: false, permitted: true },
        { action: 'leaky.prompts/get', detectors: ['ticket'], withheld: true, permitted: true },
      ]),
    );
    // The tool-call errors are recorded on the call's own outcome record.
    const toolOutcomes = outcomes.filter((r) => r.findings?.some((f) => f.path.startsWith('/data') || f.path === '/message'));
    expect(toolOutcomes.length).toBeGreaterThanOrEqual(3);
    const raw = readFileSync(logPath, 'utf8');
    expect(raw).not.toContain(FAKE_KEY);
    expect(raw).not.toContain(TICKET);
  }, 60_000);
});
