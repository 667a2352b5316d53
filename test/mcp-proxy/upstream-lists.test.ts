import { ListPromptsRequestSchema, ListResourcesRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FakeUpstream,
  inProcessProxy,
  nestedTooDeep,
  rawClient,
  ScriptedUpstream,
  tool,
  until,
  type InProcessProxy,
} from './in-process.ts';

const POLICY = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n';

/** Lets the event loop turn, as a real pipe does between pages (in memory an endless loop would starve the test's timeout). */
const yieldToLoop = () => new Promise((r) => setImmediate(r));

describe('lists gathered from a buggy or hostile upstream', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('a resources/list cursor that never ends does not hang resources/list for every client', async () => {
    let pages = 0;
    const loop = new ScriptedUpstream([tool('a')], (s) =>
      s.setRequestHandler(ListResourcesRequestSchema, async () => {
        pages++;
        await yieldToLoop();
        return { resources: [], nextCursor: 'again' };
      }),
    );
    const fine = new FakeUpstream([tool('b')], { resources: [{ uri: 'res://fine', name: 'fine' }] });
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { loop, fine } });
    const listed = await proxy.client.listResources();
    expect(listed.resources.map((r) => r.uri)).toEqual(['res://fine']);
    expect(pages).toBeLessThanOrEqual(100);
  }, 5_000);

  it('a tools/list cursor that never ends still lets the server come up with what it listed', async () => {
    const loop = new ScriptedUpstream([tool('a')], (s) =>
      s.setRequestHandler(ListToolsRequestSchema, async (request) => {
        await yieldToLoop();
        return { tools: request.params?.cursor === undefined ? [tool('a')] : [], nextCursor: 'again' };
      }),
    );
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { loop } });
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['loop__a']);
    expect((await proxy.client.callTool({ name: 'loop__a', arguments: {} })).isError).toBeFalsy();
  }, 5_000);

  it('a URI two servers list is read from the one listed first in the config, however fast the other answers', async () => {
    const uri = 'res://shared';
    // The first server answers only once the second has answered.
    let secondAnswered!: () => void;
    const second = new ScriptedUpstream([tool('b')], (s, self) =>
      s.setRequestHandler(ListResourcesRequestSchema, () => {
        secondAnswered();
        return { resources: self.resources };
      }),
    );
    second.resources = [{ uri, name: 'second' }];
    const afterSecond = new Promise<void>((r) => (secondAnswered = r));
    const first = new ScriptedUpstream([tool('a')], (s) =>
      s.setRequestHandler(ListResourcesRequestSchema, async () => {
        await afterSecond;
        return { resources: [{ uri, name: 'first' }] };
      }),
    );
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { first, second } });
    const listed = await proxy.client.listResources();
    expect(listed.resources.map((r) => r.name)).toEqual(['first', 'second']);
    await proxy.client.readResource({ uri });
    expect(first.reads).toHaveLength(1);
    expect(second.reads).toHaveLength(0);
  });

  it('drops an entry nested too deep to pass on from the lists (tools without pinning, resources), the rest of every server still listed', async () => {
    const bad = new FakeUpstream([tool('a'), { name: 'b', inputSchema: { type: 'object', properties: { x: nestedTooDeep() as never } } }], {
      resources: [
        { uri: 'res://ok', name: 'ok' },
        { uri: 'res://deep', name: 'deep', _meta: { deep: nestedTooDeep() } },
      ],
    });
    const good = new FakeUpstream([tool('c')]);
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { bad, good } });
    const raw = await rawClient(proxy);
    await raw.send({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    await raw.send({ jsonrpc: '2.0', id: 2, method: 'resources/list' });
    await until('both answers', () => raw.got.length >= 2);
    const byId = new Map(
      raw.got.map((m) => [(m as { id: number }).id, m as { result?: Record<string, { name: string; uri?: string }[]> }]),
    );
    expect(
      byId
        .get(1)
        ?.result?.tools?.map((t) => t.name)
        .sort(),
    ).toEqual(['bad__a', 'good__c']);
    expect(byId.get(2)?.result?.resources?.map((r) => r.uri)).toEqual(['res://ok']);
  });
});

describe('a storm of list_changed notifications', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('re-lists tools at most twice for a burst, and the last change is the one listed', async () => {
    let lists = 0;
    let release: (() => void) | undefined;
    const up = new ScriptedUpstream([tool('a')], (s, self) =>
      s.setRequestHandler(ListToolsRequestSchema, async () => {
        lists++;
        const tools = self.tools;
        if (lists > 1) await new Promise<void>((r) => (release = r));
        return { tools };
      }),
    );
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { up } });
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['up__a']);
    const server = up.server as NonNullable<FakeUpstream['server']>;
    const burst = () => Promise.all(Array.from({ length: 50 }, () => server.sendToolListChanged()));

    up.tools = [tool('a'), tool('b')];
    await burst();
    await expect.poll(() => release).toBeDefined();
    // The upstream changes again while the first re-list is in flight; every notification of the
    // burst has reached the proxy once the sends resolve (its handlers run before this continues).
    up.tools = [tool('a'), tool('b'), tool('c')];
    await burst();
    await until('the last change to be listed', async () => {
      const r = release;
      release = undefined;
      r?.();
      return (await proxy!.client.listTools()).tools.length === 3;
    });
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['up__a', 'up__b', 'up__c']);
    expect(lists).toBeLessThanOrEqual(3);
  });

  it('re-lists prompts at most twice for a burst', async () => {
    let lists = 0;
    const up = new ScriptedUpstream([tool('a')], (s, self) =>
      s.setRequestHandler(ListPromptsRequestSchema, async () => {
        lists++;
        // A slow listing: the burst arrives while the first re-list is in flight.
        await new Promise((r) => setTimeout(r, 10));
        return { prompts: self.prompts };
      }),
    );
    up.prompts = [{ name: 'p' }];
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { up } });
    expect((await proxy.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['up__p']);
    up.prompts = [{ name: 'p' }, { name: 'q' }];
    const server = up.server as NonNullable<FakeUpstream['server']>;
    await Promise.all(Array.from({ length: 50 }, () => server.sendPromptListChanged()));
    await expect.poll(async () => (await proxy!.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['up__p', 'up__q']);
    // Any further re-list would have been started when the last one answered; a tools/call sent
    // now reaches the upstream behind it on the same connection.
    await proxy.client.callTool({ name: 'up__a', arguments: {} });
    expect(lists).toBeLessThanOrEqual(3);
  });
});
