import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { CallToolRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutcomeEntry } from '../../src/audit/entry.ts';
import { VERDICT_META_KEY } from '../../src/mcp-proxy/meta.ts';
import { createSession } from '../../src/mcp-proxy/session.ts';
import { ALICE, FakeUpstream, inProcessProxy, tool, until, type InProcessProxy } from './in-process.ts';

// Built at run time so no scanner mistakes this file for a leak: AKIA + 16 base32 characters.
const FAKE_KEY = `AKIA${'QX7Z2M4K'.repeat(2)}`;
const PERMIT_ALL = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n';
const screenPolicy = (mode: string, actions = '["fx.*"]') =>
  `${PERMIT_ALL}\n[[screen]]\nname = "no-keys"\nactions = ${actions}\ndetectors = ["aws_access_key"]\nmode = "${mode}"\n`;

/** The proxy with one upstream `fx` whose `leak` tool answers a text holding FAKE_KEY. */
async function leakyProxy(policy: string, records: unknown[]): Promise<{ proxy: InProcessProxy; fx: FakeUpstream }> {
  const fx = new FakeUpstream([tool('leak')]);
  fx.respond = () => ({ content: [{ type: 'text', text: `your key is ${FAKE_KEY}, keep it safe` }] });
  const proxy = await inProcessProxy({ policy, upstreams: { fx }, outcomes: { append: async (r) => void records.push(r) } });
  return { proxy, fx };
}

/** A client on the SDK request path (no stdio fast path), as the HTTP transport serves it. */
async function sdkPathClient(proxy: InProcessProxy): Promise<Client> {
  const session = createSession(proxy.core, ALICE, { startUpstreamsOnInit: true });
  proxy.core.addSession(session);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await session.server.connect(serverSide);
  const client = new Client({ name: 'sdk-path', version: '1.0.0' });
  await client.connect(clientSide);
  return client;
}

const outcomesOf = (records: unknown[]) => records.filter((r): r is OutcomeEntry => (r as { type?: string }).type === 'outcome');

describe('result screening in the proxy tools/call path', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  for (const path of ['stdio fast path', 'SDK path'] as const) {
    it(`redact mode forwards the answer with the key replaced, and records where (${path})`, async () => {
      const records: unknown[] = [];
      ({ proxy } = await leakyProxy(screenPolicy('redact'), records));
      const client = path === 'SDK path' ? await sdkPathClient(proxy) : proxy.client;
      const result = (await client.callTool({ name: 'fx__leak', arguments: {} })) as CallToolResult;
      expect(result.isError).toBeFalsy();
      expect(result.content).toEqual([{ type: 'text', text: 'your key is [REDACTED:aws_access_key], keep it safe' }]);
      await until('the outcome record', () => outcomesOf(records).length >= 1);
      const [outcome] = outcomesOf(records);
      expect(outcome).toMatchObject({
        outcome: 'ok',
        action: 'fx.leak',
        findings: [{ screen: 'no-keys', detector: 'aws_access_key', path: '/content/0/text', count: 1 }],
      });
      expect(outcome?.withheld).toBeUndefined();
      expect(JSON.stringify(records)).not.toContain(FAKE_KEY);
    });

    it(`block mode answers OUTPUT_BLOCKED and the key reaches neither client nor audit (${path})`, async () => {
      const records: unknown[] = [];
      ({ proxy } = await leakyProxy(screenPolicy('block'), records));
      const client = path === 'SDK path' ? await sdkPathClient(proxy) : proxy.client;
      const result = (await client.callTool({ name: 'fx__leak', arguments: {} })) as CallToolResult;
      expect(result.isError).toBe(true);
      expect(JSON.stringify(result)).not.toContain(FAKE_KEY);
      expect(JSON.stringify(result)).not.toContain('keep it safe');
      const text = (result.content as { text: string }[])[0]?.text;
      expect(text).toContain('[OUTPUT_BLOCKED]');
      expect(text).toContain('an AWS access key ID');
      expect(result._meta?.[VERDICT_META_KEY]).toMatchObject({ kind: 'refuse', code: 'OUTPUT_BLOCKED', evaluator: 'screen' });
      await until('the outcome record', () => outcomesOf(records).length >= 1);
      const [outcome] = outcomesOf(records);
      expect(outcome).toMatchObject({
        withheld: true,
        findings: [{ screen: 'no-keys', detector: 'aws_access_key', path: '/content/0/text', count: 1 }],
      });
      // The refusal and the outcome name the same evaluation: the gate permitted, the screen withheld.
      expect(outcome?.evaluationId).toBe((result._meta?.[VERDICT_META_KEY] as { evaluationId: string } | undefined)?.evaluationId);
      expect(JSON.stringify(records)).not.toContain(FAKE_KEY);
    });
  }

  it('report mode forwards the answer unchanged and records the finding without the value', async () => {
    const records: unknown[] = [];
    ({ proxy } = await leakyProxy(screenPolicy('report'), records));
    const result = (await proxy.client.callTool({ name: 'fx__leak', arguments: {} })) as CallToolResult;
    expect(result.content).toEqual([{ type: 'text', text: `your key is ${FAKE_KEY}, keep it safe` }]);
    await until('the outcome record', () => outcomesOf(records).length >= 1);
    expect(outcomesOf(records)[0]).toMatchObject({
      outcome: 'ok',
      findings: [{ screen: 'no-keys', detector: 'aws_access_key', count: 1 }],
    });
    expect(JSON.stringify(records)).not.toContain(FAKE_KEY);
  });

  it('a screen for other actions leaves the answer alone and records no findings', async () => {
    const records: unknown[] = [];
    ({ proxy } = await leakyProxy(screenPolicy('block', '["shell.*"]'), records));
    const result = (await proxy.client.callTool({ name: 'fx__leak', arguments: {} })) as CallToolResult;
    expect(result.content).toEqual([{ type: 'text', text: `your key is ${FAKE_KEY}, keep it safe` }]);
    await until('the outcome record', () => outcomesOf(records).length >= 1);
    expect(outcomesOf(records)[0]).not.toHaveProperty('findings');
  });

  for (const [mode, expected] of [
    ['redact', 'copying with [REDACTED:aws_access_key]'],
    ['block', undefined],
  ] as const)
    it(`screens the message of a forwarded call's progress under its action (${mode})`, async () => {
      const records: unknown[] = [];
      const fx = new FakeUpstream([tool('leak')]);
      proxy = await inProcessProxy({
        policy: screenPolicy(mode),
        upstreams: { fx },
        outcomes: { append: async (r) => void records.push(r) },
      });
      (fx.server as NonNullable<FakeUpstream['server']>).setRequestHandler(CallToolRequestSchema, async (req, extra) => {
        const token = req.params._meta?.progressToken;
        if (token !== undefined)
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: 1, message: `copying with ${FAKE_KEY}` },
          });
        return { content: [{ type: 'text', text: 'done' }] };
      });
      const seen: { progress: number; message?: string }[] = [];
      await proxy.client.callTool({ name: 'fx__leak', arguments: {} }, undefined, { onprogress: (p) => void seen.push(p) });
      expect(seen).toHaveLength(1);
      expect(seen[0]?.progress).toBe(1);
      expect(seen[0]?.message).toBe(expected);
    });
});
