import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  type LoggingLevel,
} from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ALICE, FakeUpstream, inProcessProxy, ScriptedUpstream, tool, until, type InProcessProxy } from './in-process.ts';

const POLICY = '[[policy]]\nname = "fx"\neffect = "permit"\nconditions = [{ action = "fx.*" }]\n';
const POLICY_ALL = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n';
const BOB = { principalId: 'bob', principalKind: 'agent' as const, roles: [] };

/** Everything a downstream client hears: resource updates and log lines. */
function heard(client: Client): string[] {
  const out: string[] = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void out.push(`updated ${n.params.uri}`));
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void out.push(`log ${JSON.stringify(n.params.data)}`));
  return out;
}

/**
 * Resolves once the proxy has handled everything `up` sent before: a log line, which with clients
 * of several principals goes only to the proxy's own log, sent after them (the proxy handles an
 * upstream's notifications in order, and fans each out to its clients as it handles it).
 */
async function handledSoFar(up: FakeUpstream, logs: string[]): Promise<void> {
  const marker = `barrier-${logs.length}-${Math.random()}`;
  await up.server?.sendLoggingMessage({ level: 'error', data: marker });
  await until("the proxy to handle the upstream's notifications", () => logs.some((l) => l.includes(marker)));
}

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
    // The proxy logs the line as it handles it, after the update: both are handled, and sent on.
    await until('the upstream log line', () => logs.join('\n').includes('s3cret'));

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
    await expect.poll(() => fx.subscribed.has(uri)).toBe(false);
  });

  it('still forwards upstream logs when every connected client is the same principal (stdio)', async () => {
    const fx = new FakeUpstream([tool('a')]);
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx } });
    const aliceHeard = heard(proxy.client);
    await proxy.client.listTools();
    await fx.server?.sendLoggingMessage({ level: 'info', data: 'hello' });
    await expect.poll(() => aliceHeard).toEqual(['log "hello"']);
  });
});

describe('resource subscriptions when the policies are reloaded', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  const subscribers = (who: string | string[]) => `[[policy]]
name = "subscribe"
effect = "permit"
conditions = [{ identity_id = ${JSON.stringify(who)} }, { action = "docs.resources/subscribe" }, { resource = "file:///docs/*" }]

[[policy]]
name = "read"
effect = "permit"
conditions = [{ action = "docs.resources/read" }]
`;

  it('drops the subscriptions the new policies refuse, and unsubscribes the upstream once nobody holds them', async () => {
    const up = new FakeUpstream([tool('search')], { resources: [{ uri: 'file:///docs/a.md', name: 'a' }] });
    const logs: string[] = [];
    // identity_id is exact where it permits (a Kavach id has no globs): both ids are listed.
    proxy = await inProcessProxy({
      policy: subscribers(['alice', 'bob']),
      upstreams: { docs: up },
      gate: { gate_resources: true },
      log: (m) => logs.push(m),
    });
    const bob = await proxy.connect(BOB);
    const got = { alice: [] as string[], bob: [] as string[] };
    proxy.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void got.alice.push(n.params.uri));
    bob.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void got.bob.push(n.params.uri));
    await proxy.client.subscribeResource({ uri: 'file:///docs/a.md' });
    await bob.subscribeResource({ uri: 'file:///docs/a.md' });
    expect([...up.subscribed]).toEqual(['file:///docs/a.md']);

    // Only alice may subscribe now.
    proxy.gate.reload(subscribers('alice'));
    await proxy.core.refreshVisibility();
    await up.server!.sendResourceUpdated({ uri: 'file:///docs/a.md' });
    await expect.poll(() => got.alice).toEqual(['file:///docs/a.md']);
    await handledSoFar(up, logs);
    expect(got.bob).toEqual([]);
    expect([...up.subscribed]).toEqual(['file:///docs/a.md']);

    // Nobody may: the upstream is unsubscribed too.
    proxy.gate.reload(subscribers('carol'));
    await proxy.core.refreshVisibility();
    await expect.poll(() => up.subscribed.size).toBe(0);
    await up.server!.sendResourceUpdated({ uri: 'file:///docs/a.md' });
    await handledSoFar(up, logs);
    expect(got.alice).toEqual(['file:///docs/a.md']);
  });
});

describe('concurrent resource subscriptions', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  const uri = 'file:///docs/a.md';
  /** An upstream whose subscribe answers only when the test says so. */
  const slowSubscribe = (held: (() => void)[]) =>
    new ScriptedUpstream([tool('search')], (s, self) =>
      s.setRequestHandler(SubscribeRequestSchema, async (r) => {
        await new Promise<void>((release) => held.push(release));
        self.subscribed.add(r.params.uri);
        return {};
      }),
    );

  it.each([false, true])('two sessions subscribing to one URI at once both get its updates (gate_resources %s)', async (gated) => {
    const held: (() => void)[] = [];
    const up = slowSubscribe(held);
    up.resources = [{ uri, name: 'a' }];
    proxy = await inProcessProxy({ policy: POLICY_ALL, upstreams: { docs: up }, gate: { gate_resources: gated } });
    const bob = await proxy.connect(BOB);
    const got = { alice: 0, bob: 0 };
    proxy.client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void got.alice++);
    bob.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void got.bob++);
    await proxy.client.listResources();
    const both = Promise.all([proxy.client.subscribeResource({ uri }), bob.subscribeResource({ uri })]);
    await expect.poll(() => held.length).toBeGreaterThan(0);
    // Gives the second subscribe time to arrive while the first is held (setup, not an assertion:
    // the test passes either way once both resolve and both clients hear the update).
    await new Promise((r) => setTimeout(r, 20));
    for (const release of held) release();
    await both;
    await up.server!.sendResourceUpdated({ uri });
    await expect.poll(() => got).toEqual({ alice: 1, bob: 1 });
  });

  it('a subscription made while a reload refused it is undone and the client told', async () => {
    const held: (() => void)[] = [];
    const up = slowSubscribe(held);
    up.resources = [{ uri, name: 'a' }];
    proxy = await inProcessProxy({ policy: POLICY_ALL, upstreams: { docs: up }, gate: { gate_resources: true } });
    await proxy.client.listResources();
    const subscribing = proxy.client.subscribeResource({ uri }).then(
      () => 'subscribed',
      (e: Error) => e.message,
    );
    await expect.poll(() => held.length).toBe(1);
    proxy.gate.reload('[[policy]]\nname = "read-only"\neffect = "permit"\nconditions = [{ action = "docs.resources/read" }]\n');
    await proxy.core.refreshVisibility();
    held[0]!();
    expect(await subscribing).toContain('policies were reloaded');
    await expect.poll(() => up.subscribed.size).toBe(0);
  });
});

describe('logging/setLevel from several clients', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('the upstream logs at the most verbose level asked for; each client gets only what is at or above its own', async () => {
    const levels: LoggingLevel[] = [];
    const up = new ScriptedUpstream([tool('a')], (s) =>
      s.setRequestHandler(SetLevelRequestSchema, (r) => {
        levels.push(r.params.level);
        return {};
      }),
    );
    proxy = await inProcessProxy({ policy: POLICY_ALL, upstreams: { up } });
    const quiet = proxy.client;
    const verbose = await proxy.connect(ALICE);
    const got = { quiet: [] as string[], verbose: [] as string[] };
    quiet.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void got.quiet.push(String(n.params.data)));
    verbose.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void got.verbose.push(String(n.params.data)));
    await quiet.listTools();

    await verbose.setLoggingLevel('debug');
    await quiet.setLoggingLevel('error');
    expect(levels.at(-1)).toBe('debug');

    const server = up.server as NonNullable<FakeUpstream['server']>;
    await server.sendLoggingMessage({ level: 'info', data: 'info line' });
    await server.sendLoggingMessage({ level: 'error', data: 'error line' });
    await expect.poll(() => got.verbose).toEqual(['info line', 'error line']);
    await expect.poll(() => got.quiet).toEqual(['error line']);

    // Once the verbose client is gone, the upstream goes back to what the rest asked for.
    await verbose.close();
    await expect.poll(() => levels.at(-1)).toBe('error');
  });
});
