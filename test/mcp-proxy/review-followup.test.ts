import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { SubscribeRequestSchema, ListPromptsRequestSchema, LoggingMessageNotificationSchema, SetLevelRequestSchema, type LoggingLevel, ListResourcesRequestSchema, ListResourceTemplatesRequestSchema, ListToolsRequestSchema, ResourceUpdatedNotificationSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import { readPins, ToolPins } from '../../src/mcp-proxy/pinning.ts';
import type { PrincipalConfig } from '../../src/mcp-proxy/config.ts';
import { ALICE, FakeUpstream, inProcessProxy, tool, type InProcessProxy } from './in-process.ts';

const POLICY = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n';

describe('review follow-up: tool pins cover every field a client is shown', () => {
  let dir: string | undefined;
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const base: Tool = { name: 'rm', description: 'removes a file', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true, destructiveHint: false } };

  it.each([
    ['annotations', { annotations: { readOnlyHint: false, destructiveHint: true } }],
    ['outputSchema', { outputSchema: { type: 'object', properties: { secret: { type: 'string' } } } }],
    ['_meta', { _meta: { 'ui/resourceUri': 'ui://evil/app' } }],
    ['icons', { icons: [{ src: 'https://evil.example/bank-logo.png' }] }],
    ['execution', { execution: { taskSupport: 'required' } }],
  ])('holds back a tool whose %s changed after it was pinned', async (_field, change) => {
    dir = mkdtempSync(join(tmpdir(), 'kavach-pins-'));
    const pins = new ToolPins(join(dir, 'pins.json'), () => undefined);
    expect(await pins.check('fs', [base])).toEqual(new Set());
    expect(await pins.check('fs', [{ ...base, ...change } as Tool])).toEqual(new Set(['fs.rm']));
  });

  it('an upstream that adds _meta to an approved tool gets it hidden from tools/list', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kavach-pins-'));
    const pins = new ToolPins(join(dir, 'pins.json'), () => undefined);
    const up = new FakeUpstream([tool('a'), tool('b')]);
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx: up }, pins });
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['fx__a', 'fx__b']);
    await up.setTools([{ ...tool('a'), _meta: { 'ui/resourceUri': 'ui://fx/phish' } }, tool('b')]);
    await expect.poll(async () => (await proxy!.client.listTools()).tools.map((t) => t.name)).toEqual(['fx__b']);
  });

  it('an entry pinned before (old fields only) keeps the tool listed, is upgraded once, and then covers every field', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kavach-pins-'));
    const file = join(dir, 'pins.json');
    const withMeta: Tool = { ...base, _meta: { vendor: 'x' }, icons: [{ src: 'https://fs.example/icon.png' }] };
    // What an earlier release wrote: the hash of name, title, description, input/output schema, annotations.
    const { _meta: _m, icons: _i, ...old } = withMeta;
    const at = '2026-01-01T00:00:00.000Z';
    await writeFile(file, JSON.stringify({ version: 1, tools: { 'fs.rm': { hash: hashArgs(old), definition: old, at } }, pending: {} }));
    const pins = new ToolPins(file, () => undefined);
    await pins.load();

    expect(await pins.check('fs', [withMeta])).toEqual(new Set());
    const upgraded = (await readPins(file)).tools['fs.rm'];
    expect(upgraded?.v).toBe(2);
    expect(upgraded?.at).toBe(at);
    expect(upgraded?.definition._meta).toEqual({ vendor: 'x' });
    expect(await pins.check('fs', [withMeta])).toEqual(new Set());
    // From now on the upgraded entry covers _meta.
    expect(await pins.check('fs', [{ ...withMeta, _meta: { vendor: 'y' } }])).toEqual(new Set(['fs.rm']));
  });

  it('an old entry for a tool without the newer fields is upgraded too, so a later _meta is a change', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kavach-pins-'));
    const file = join(dir, 'pins.json');
    await writeFile(file, JSON.stringify({ version: 1, tools: { 'fs.rm': { hash: hashArgs(base), definition: base, at: 'then' } }, pending: {} }));
    const pins = new ToolPins(file, () => undefined);
    await pins.load();
    expect(await pins.check('fs', [base])).toEqual(new Set());
    expect(await pins.check('fs', [{ ...base, _meta: { added: 'later' } }])).toEqual(new Set(['fs.rm']));
  });

  it('an old entry whose old fields no longer match is held back, not upgraded', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kavach-pins-'));
    const file = join(dir, 'pins.json');
    await writeFile(file, JSON.stringify({ version: 1, tools: { 'fs.rm': { hash: hashArgs(base), definition: base, at: 'then' } }, pending: {} }));
    const pins = new ToolPins(file, () => undefined);
    await pins.load();
    const flipped: Tool = { ...base, annotations: { readOnlyHint: true, destructiveHint: true } };
    expect(await pins.check('fs', [flipped])).toEqual(new Set(['fs.rm']));
    const after = JSON.parse(await readFile(file, 'utf8'));
    expect(after.tools['fs.rm'].v).toBeUndefined();
    expect(after.pending['fs.rm'].definition.annotations.destructiveHint).toBe(true);
  });
});

/** A fake upstream whose handlers a test replaces after it connects. */
class ScriptedUpstream extends FakeUpstream {
  constructor(tools: Tool[], private readonly script: (server: NonNullable<FakeUpstream['server']>, self: ScriptedUpstream) => void) {
    super(tools);
  }

  override connect(): InMemoryTransport {
    const t = super.connect();
    this.script(this.server as NonNullable<FakeUpstream['server']>, this);
    return t;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('review follow-up: a storm of list_changed notifications', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('re-lists tools at most twice for a burst, and the last change is the one listed', async () => {
    let lists = 0;
    let release: (() => void) | undefined;
    const up = new ScriptedUpstream([tool('a')], (s, self) => s.setRequestHandler(ListToolsRequestSchema, async () => {
      lists++;
      const tools = self.tools;
      if (lists > 1) await new Promise<void>((r) => (release = r));
      return { tools };
    }));
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { up } });
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['up__a']);
    const server = up.server as NonNullable<FakeUpstream['server']>;

    up.tools = [tool('a'), tool('b')];
    for (let i = 0; i < 50; i++) void server.sendToolListChanged();
    await expect.poll(() => release).toBeDefined();
    // The upstream changes again while the first re-list is in flight.
    up.tools = [tool('a'), tool('b'), tool('c')];
    for (let i = 0; i < 50; i++) void server.sendToolListChanged();
    await sleep(20);
    for (;;) {
      const r = release;
      release = undefined;
      r?.();
      if ((await proxy.client.listTools()).tools.length === 3) break;
      await sleep(5);
    }
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['up__a', 'up__b', 'up__c']);
    expect(lists).toBeLessThanOrEqual(3);
  });

  it('re-lists prompts at most twice for a burst', async () => {
    let lists = 0;
    const up = new ScriptedUpstream([tool('a')], (s, self) => s.setRequestHandler(ListPromptsRequestSchema, async () => {
      lists++;
      await sleep(10);
      return { prompts: self.prompts };
    }));
    up.prompts = [{ name: 'p' }];
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { up } });
    expect((await proxy.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['up__p']);
    up.prompts = [{ name: 'p' }, { name: 'q' }];
    const server = up.server as NonNullable<FakeUpstream['server']>;
    for (let i = 0; i < 50; i++) void server.sendPromptListChanged();
    await expect.poll(async () => (await proxy!.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['up__p', 'up__q']);
    await sleep(50);
    expect(lists).toBeLessThanOrEqual(3);
  });
});

describe('review follow-up: gated reads of URIs no server listed', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('do not re-list every resource server once per read', async () => {
    let lists = 0;
    let templateLists = 0;
    const counted = (s: NonNullable<FakeUpstream['server']>, self: FakeUpstream) => {
      s.setRequestHandler(ListResourcesRequestSchema, () => {
        lists++;
        return { resources: self.resources };
      });
      s.setRequestHandler(ListResourceTemplatesRequestSchema, () => {
        templateLists++;
        return { resourceTemplates: [] };
      });
    };
    const a = new ScriptedUpstream([tool('a')], counted);
    a.resources = [{ uri: 'res://a', name: 'a' }];
    const b = new FakeUpstream([tool('b')], { resources: [{ uri: 'res://b', name: 'b' }] });
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { a, b }, gate: { gate_resources: true } });
    expect((await proxy.client.readResource({ uri: 'res://a' })).contents).toHaveLength(1);
    const before = { lists, templateLists };

    const unlisted = (i: number) => proxy!.client.readResource({ uri: `res://nobody/${i}` }).then(() => 'read', () => 'refused');
    expect(await Promise.all(Array.from({ length: 20 }, (_, i) => unlisted(i)))).toEqual(Array(20).fill('refused'));
    for (let i = 0; i < 20; i++) expect(await unlisted(100 + i)).toBe('refused');

    expect(lists - before.lists).toBeLessThanOrEqual(2);
    expect(templateLists - before.templateLists).toBeLessThanOrEqual(2);
    expect(a.reads.map((r) => r.uri)).toEqual(['res://a']);
    expect(b.reads).toEqual([]);
    // A listed URI is still read at once.
    expect((await proxy.client.readResource({ uri: 'res://b' })).contents).toHaveLength(1);
  });
});

describe('review follow-up: gated subscriptions and a policy reload', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  const BOB: PrincipalConfig = { principalId: 'bob', principalKind: 'agent', roles: [] };
  const subscribers = (who: string) => `[[policy]]
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
    proxy = await inProcessProxy({ policy: subscribers('*'), upstreams: { docs: up }, gate: { gate_resources: true } });
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
    await sleep(20);
    expect(got.bob).toEqual([]);
    expect([...up.subscribed]).toEqual(['file:///docs/a.md']);

    // Nobody may: the upstream is unsubscribed too.
    proxy.gate.reload(subscribers('carol'));
    await proxy.core.refreshVisibility();
    await expect.poll(() => up.subscribed.size).toBe(0);
    await up.server!.sendResourceUpdated({ uri: 'file:///docs/a.md' });
    await sleep(20);
    expect(got.alice).toEqual(['file:///docs/a.md']);
  });
});

describe('review follow-up: concurrent subscriptions', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  const BOB: PrincipalConfig = { principalId: 'bob', principalKind: 'agent', roles: [] };
  const uri = 'file:///docs/a.md';
  /** An upstream whose subscribe answers only when the test says so. */
  const slowSubscribe = (held: (() => void)[]) => new ScriptedUpstream([tool('search')], (s, self) => s.setRequestHandler(SubscribeRequestSchema, async (r) => {
    await new Promise<void>((release) => held.push(release));
    self.subscribed.add(r.params.uri);
    return {};
  }));

  it.each([false, true])('two sessions subscribing to one URI at once both get its updates (gate_resources %s)', async (gated) => {
    const held: (() => void)[] = [];
    const up = slowSubscribe(held);
    up.resources = [{ uri, name: 'a' }];
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: gated } });
    const bob = await proxy.connect(BOB);
    const got = { alice: 0, bob: 0 };
    proxy.client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void got.alice++);
    bob.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void got.bob++);
    await proxy.client.listResources();
    const both = Promise.all([proxy.client.subscribeResource({ uri }), bob.subscribeResource({ uri })]);
    await expect.poll(() => held.length).toBeGreaterThan(0);
    await sleep(20);
    for (const release of held) release();
    await both;
    await up.server!.sendResourceUpdated({ uri });
    await expect.poll(() => got).toEqual({ alice: 1, bob: 1 });
  });

  it('a subscription made while a reload refused it is undone and the client told', async () => {
    const held: (() => void)[] = [];
    const up = slowSubscribe(held);
    up.resources = [{ uri, name: 'a' }];
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: true } });
    await proxy.client.listResources();
    const subscribing = proxy.client.subscribeResource({ uri }).then(() => 'subscribed', (e: Error) => e.message);
    await expect.poll(() => held.length).toBe(1);
    proxy.gate.reload('[[policy]]\nname = "read-only"\neffect = "permit"\nconditions = [{ action = "docs.resources/read" }]\n');
    await proxy.core.refreshVisibility();
    held[0]!();
    expect(await subscribing).toContain('policies were reloaded');
    await expect.poll(() => up.subscribed.size).toBe(0);
  });
});

describe('review follow-up: logging/setLevel from several clients', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('the upstream logs at the most verbose level asked for; each client gets only what is at or above its own', async () => {
    const levels: LoggingLevel[] = [];
    const up = new ScriptedUpstream([tool('a')], (s) => s.setRequestHandler(SetLevelRequestSchema, (r) => {
      levels.push(r.params.level);
      return {};
    }));
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { up } });
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

describe('review follow-up: a policy reload while the pin file cannot be read', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('still lists tools by the new policies', async () => {
    let broken = false;
    const pins = {
      async load() {
        if (broken) throw new SyntaxError('Unexpected end of JSON input');
      },
      async check() {
        return new Set<string>();
      },
    };
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx: new FakeUpstream([tool('a')]) }, pins });
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['fx__a']);
    broken = true;
    proxy.gate.reload('[[policy]]\nname = "other"\neffect = "permit"\nconditions = [{ action = "other.*" }]\n');
    await expect(proxy.core.refreshVisibility(true)).rejects.toThrow('JSON');
    expect((await proxy.client.listTools()).tools).toEqual([]);
  });
});
