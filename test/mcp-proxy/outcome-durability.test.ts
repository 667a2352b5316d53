import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createSession } from '../../src/mcp-proxy/session.ts';
import { ALICE, FakeUpstream, inProcessProxy, tool, until, type InProcessProxy } from './in-process.ts';

const POLICY = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "fx.*" }]\n';

/** An audit sink that holds every append until `release()`: the answer must wait for it. */
function heldSink() {
  const records: { type: string }[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  return {
    records,
    release,
    sink: {
      append: async (r: unknown) => {
        records.push(r as { type: string });
        await released;
      },
    },
  };
}

async function sdkPathClient(proxy: InProcessProxy): Promise<Client> {
  const session = createSession(proxy.core, ALICE, { startUpstreamsOnInit: true });
  proxy.core.addSession(session);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await session.server.connect(serverSide);
  const client = new Client({ name: 'sdk-path', version: '1.0.0' });
  await client.connect(clientSide);
  return client;
}

describe('the proxy answers a call only once its own audit record is appended', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  for (const path of ['stdio fast path', 'SDK path'] as const) {
    for (const [what, name, type] of [
      ['a forwarded call (its outcome)', 'fx__echo', 'outcome'],
      ['a call to an unknown tool (its verdict)', 'fx__nope', 'verdict'],
    ] as const) {
      it(`${what}, ${path}`, async () => {
        const held = heldSink();
        const fx = new FakeUpstream([tool('echo')]);
        fx.respond = () => ({ content: [{ type: 'text', text: 'ok' }] });
        proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx }, outcomes: held.sink });
        const client = path === 'SDK path' ? await sdkPathClient(proxy) : proxy.client;
        let answered = false;
        const call = client.callTool({ name, arguments: {} }).then((r) => {
          answered = true;
          return r;
        });
        await until('the record is being appended', () => held.records.some((r) => r.type === type));
        // Several turns of the event loop: an answer not held back by the append would be out by now.
        for (let i = 0; i < 20; i++) await new Promise(setImmediate);
        expect(answered).toBe(false);
        held.release();
        await call;
        expect(answered).toBe(true);
      });
    }
  }
});
