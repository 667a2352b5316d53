import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeUpstream, inProcessProxy, tool, type InProcessProxy } from './in-process.ts';

const POLICY = '[[policy]]\nname = "fx"\neffect = "permit"\nconditions = [{ action = "fx.*" }]\n';
const BOB = { principalId: 'bob', principalKind: 'agent' as const, roles: [] };

/** Everything a downstream client hears: resource updates and log lines. */
function heard(client: Client): string[] {
  const out: string[] = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void out.push(`updated ${n.params.uri}`));
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void out.push(`log ${JSON.stringify(n.params.data)}`));
  return out;
}

const settle = () => new Promise((r) => setTimeout(r, 30));

describe('upstream notifications with clients of several principals (HTTP mode)', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('sends a resource update only to the clients subscribed to it, and keeps upstream logs off other principals', async () => {
    const fx = new FakeUpstream([tool('a')]);
    const logs: string[] = [];
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx }, log: (m) => logs.push(m) });
    const bob = await proxy.connect(BOB);
    const alice = proxy.client;
    const aliceHeard = heard(alice);
    const bobHeard = heard(bob);
    await alice.listTools();

    await alice.subscribeResource({ uri: 'file:///alice/notes.txt' });
    expect(fx.subscribed.has('file:///alice/notes.txt')).toBe(true);
    await fx.server?.sendResourceUpdated({ uri: 'file:///alice/notes.txt' });
    // A log line an upstream writes while serving one client may carry that client's data.
    await fx.server?.sendLoggingMessage({ level: 'info', data: 'read /alice/notes.txt: s3cret' });
    await settle();

    expect(aliceHeard).toEqual(['updated file:///alice/notes.txt']);
    expect(bobHeard).toEqual([]);
    expect(logs.join('\n')).toContain('s3cret');
  });

  it('keeps the upstream subscription until the last subscribed client unsubscribes or leaves', async () => {
    const fx = new FakeUpstream([tool('a')]);
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx } });
    const bob = await proxy.connect(BOB);
    await proxy.client.listTools();
    const uri = 'file:///shared.txt';
    await proxy.client.subscribeResource({ uri });
    await bob.subscribeResource({ uri });
    await bob.unsubscribeResource({ uri });
    expect(fx.subscribed.has(uri)).toBe(true);
    await proxy.client.close();
    await settle();
    expect(fx.subscribed.has(uri)).toBe(false);
  });

  it('still forwards upstream logs when every connected client is the same principal (stdio)', async () => {
    const fx = new FakeUpstream([tool('a')]);
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx } });
    const aliceHeard = heard(proxy.client);
    await proxy.client.listTools();
    await fx.server?.sendLoggingMessage({ level: 'info', data: 'hello' });
    await settle();
    expect(aliceHeard).toEqual(['log "hello"']);
  });
});
