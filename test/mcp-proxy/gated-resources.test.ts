import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  type McpError,
} from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { GateEvent } from '../../src/engine/ports.ts';
import { KeyPair, PermitSigner, PermitVerifier, PublicKeyDirectory } from '../../src/crypto/index.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { formatRefusal } from '../../src/engine/refusal.ts';
import type { Verdict } from '../../src/engine/verdict.ts';
import { ConfigError } from '../../src/engine/errors.ts';
import { parseConfig, type PrincipalConfig } from '../../src/mcp-proxy/config.ts';
import { errorOf, FakeUpstream, inProcessProxy, ScriptedUpstream, tool, type InProcessProxy } from './in-process.ts';

const BOB: PrincipalConfig = { principalId: 'bob', principalKind: 'agent', roles: [] };

const POLICY = `
[[policy]]
name = "alice-reads-docs"
effect = "permit"
conditions = [{ identity_id = "alice" }, { action = "docs.resources/read" }, { resource = "file:///docs/*" }]

[[policy]]
name = "alice-subscribes-docs"
effect = "permit"
conditions = [{ identity_id = "alice" }, { action = "docs.resources/subscribe" }, { resource = "file:///docs/*" }]

[[policy]]
name = "alice-summary-prompt"
effect = "permit"
conditions = [{ identity_id = "alice" }, { action = "docs.prompts/get" }, { resource = "summary" }, { param_in = { field = "topic", values = ["kavach"] } }]

[[policy]]
name = "everyone-search"
effect = "permit"
conditions = [{ action = "docs.search" }]
`;

const docs = (): FakeUpstream =>
  new FakeUpstream([tool('search')], {
    resources: [
      { uri: 'file:///docs/a.md', name: 'a' },
      { uri: 'file:///secret/key.pem', name: 'key' },
    ],
    prompts: [{ name: 'summary', arguments: [{ name: 'topic' }] }, { name: 'leak' }],
  });

function expectRefusal(err: McpError, code: string): Verdict {
  expect(err.code).toBe(ErrorCode.InvalidRequest);
  const verdict = (err.data as Record<string, unknown>)['dev.kavach/verdict'] as Verdict & { kind: 'refuse' };
  expect(verdict).toMatchObject({ kind: 'refuse', code });
  // The wire message is exactly the refusal text (the client prefixes its own "MCP error -32600: ").
  expect(err.message).toBe(`MCP error ${ErrorCode.InvalidRequest}: ${formatRefusal(verdict)}`);
  return verdict;
}

describe('[gate] gate_resources', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('is off by default, and only a boolean is accepted', () => {
    expect(parseConfig({ gate: { policy: 'p.toml' }, servers: { a: { command: 'x' } } }).gate.gateResources).toBe(false);
    expect(parseConfig({ gate: { policy: 'p.toml', gate_resources: true }, servers: { a: { command: 'x' } } }).gate.gateResources).toBe(
      true,
    );
    expect(() => parseConfig({ gate: { policy: 'p.toml', gate_resources: 'yes' }, servers: { a: { command: 'x' } } })).toThrow(ConfigError);
  });

  it('when off, reads and prompts pass through unfiltered, as before', async () => {
    const up = docs();
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up } });
    const bob = await proxy.connect(BOB);
    expect((await bob.listResources()).resources.map((r) => r.uri)).toEqual(['file:///docs/a.md', 'file:///secret/key.pem']);
    expect((await bob.readResource({ uri: 'file:///secret/key.pem' })).contents[0]).toMatchObject({
      text: 'contents of file:///secret/key.pem',
    });
    expect((await bob.listPrompts()).prompts.map((p) => p.name).sort()).toEqual(['docs__leak', 'docs__summary']);
    await bob.getPrompt({ name: 'docs__leak' });
    expect(up.promptGets).toHaveLength(1);
  });

  it('gates resources/read per principal: a refusal is a JSON-RPC error and nothing reaches the server', async () => {
    const up = docs();
    const events: GateEvent[] = [];
    proxy = await inProcessProxy({
      policy: POLICY,
      upstreams: { docs: up },
      gate: { gate_resources: true },
      gateOptions: { audit: { append: async (e) => void events.push(e) } },
    });
    const read = await proxy.client.readResource({ uri: 'file:///docs/a.md' });
    expect(read.contents[0]).toMatchObject({ text: 'contents of file:///docs/a.md' });

    expectRefusal(await errorOf(proxy.client.readResource({ uri: 'file:///secret/key.pem' })), 'NO_POLICY_MATCH');
    const bob = await proxy.connect(BOB);
    expectRefusal(await errorOf(bob.readResource({ uri: 'file:///docs/a.md' })), 'NO_POLICY_MATCH');
    expect(up.reads.map((r) => r.uri)).toEqual(['file:///docs/a.md']);

    const verdicts = events.filter((e) => e.type === 'verdict');
    expect(verdicts.map((e) => [e.principal, e.action, e.resource, e.verdict])).toEqual([
      ['alice', 'docs.resources/read', 'file:///docs/a.md', 'permit'],
      ['alice', 'docs.resources/read', 'file:///secret/key.pem', 'refuse'],
      ['bob', 'docs.resources/read', 'file:///docs/a.md', 'refuse'],
    ]);
  });

  it('lists only the resources, templates and prompts the principal could be permitted', async () => {
    const up = docs();
    up.resourceTemplates = [{ uriTemplate: 'file:///docs/{name}', name: 'doc' }];
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: true } });
    expect((await proxy.client.listResources()).resources.map((r) => r.uri)).toEqual(['file:///docs/a.md']);
    expect((await proxy.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual(['file:///docs/{name}']);
    expect((await proxy.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['docs__summary']);
    const bob = await proxy.connect(BOB);
    expect((await bob.listResources()).resources).toEqual([]);
    expect((await bob.listResourceTemplates()).resourceTemplates).toEqual([]);
    expect((await bob.listPrompts()).prompts).toEqual([]);
    // Tools are unaffected.
    expect((await bob.listTools()).tools.map((t) => t.name)).toEqual(['docs__search']);
  });

  it('gates prompts/get with the prompt name as resource and its arguments as params', async () => {
    const up = docs();
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: true } });
    const got = await proxy.client.getPrompt({ name: 'docs__summary', arguments: { topic: 'kavach' } });
    expect(got.messages).toHaveLength(1);
    expectRefusal(await errorOf(proxy.client.getPrompt({ name: 'docs__summary', arguments: { topic: 'payroll' } })), 'NO_POLICY_MATCH');
    expectRefusal(await errorOf(proxy.client.getPrompt({ name: 'docs__leak' })), 'NO_POLICY_MATCH');
    expect(up.promptGets.map((g) => g.arguments)).toEqual([{ topic: 'kavach' }]);
  });

  it('gates resources/subscribe: a refused subscription never reaches the server', async () => {
    const up = docs();
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: true } });
    const bob = await proxy.connect(BOB);
    expectRefusal(await errorOf(bob.subscribeResource({ uri: 'file:///docs/a.md' })), 'NO_POLICY_MATCH');
    expect(up.subscribed.size).toBe(0);
    await proxy.client.subscribeResource({ uri: 'file:///docs/a.md' });
    expect([...up.subscribed]).toEqual(['file:///docs/a.md']);
  });

  it('an unlisted URI goes to the one server whose template matches; with no single owner it is refused, never tried in turn', async () => {
    const a = new FakeUpstream([], { resourceTemplates: [{ uriTemplate: 'file:///docs/{name}', name: 'doc' }] });
    const b = new FakeUpstream([], { resourceTemplates: [{ uriTemplate: 'mem://{key}', name: 'mem' }] });
    const policy = '[[policy]]\nname = "read-all"\neffect = "permit"\nconditions = [{ action = "*.resources/read" }]\n';
    proxy = await inProcessProxy({ policy, upstreams: { docs: a, other: b }, gate: { gate_resources: true } });
    await proxy.client.readResource({ uri: 'file:///docs/late.md' });
    await proxy.client.readResource({ uri: 'mem://x' });
    expect(a.reads.map((r) => r.uri)).toEqual(['file:///docs/late.md']);
    expect(b.reads.map((r) => r.uri)).toEqual(['mem://x']);
    const err = await errorOf(proxy.client.readResource({ uri: 'https://nowhere.example/x' }));
    expect(err.code).toBe(ErrorCode.InvalidParams);
    expect(a.reads).toHaveLength(1);
    expect(b.reads).toHaveLength(1);
  });

  it('forwards the permit and drops a permit the client supplied', async () => {
    const up = docs();
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: true } });
    await (proxy.client as Client).readResource({
      uri: 'file:///docs/a.md',
      _meta: { 'dev.kavach/permit': 'kv1.forged', 'com.example/trace': 't' },
    });
    // No signing key here, so no permit of Kavach's own; the forged one is gone, the client's trace stays.
    expect(up.reads[0]?._meta).toEqual({ 'com.example/trace': 't' });
  });

  it('with a signing key, the server gets a permit for exactly this read (action, audience, { uri })', async () => {
    const up = docs();
    const kp = KeyPair.generate();
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'pq' });
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: true }, gateOptions: { signer } });
    await proxy.client.readResource({ uri: 'file:///docs/a.md' });
    const token = up.reads[0]?._meta?.['dev.kavach/permit'];
    expect(typeof token).toBe('string');
    const verifier = new PermitVerifier({
      keys: PublicKeyDirectory.inMemory(kp.publicKeys()),
      mode: 'pq',
      audience: 'docs',
      replay: new InMemoryReplayStore(),
    });
    const claims = await verifier.verify(token as string, { action: 'docs.resources/read', args: { uri: 'file:///docs/a.md' } });
    expect(claims.sub).toBe('alice');
  });

  it('after a policy reload, the new policy decides', async () => {
    const up = docs();
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { docs: up }, gate: { gate_resources: true } });
    const bob = await proxy.connect(BOB);
    expectRefusal(await errorOf(bob.readResource({ uri: 'file:///secret/key.pem' })), 'NO_POLICY_MATCH');
    proxy.gate.reload(
      '[[policy]]\nname = "bob-secrets"\neffect = "permit"\nconditions = [{ identity_id = "bob" }, { action = "docs.resources/read" }]\n',
    );
    await proxy.core.refreshVisibility();
    expect((await bob.listResources()).resources).toHaveLength(2);
    await bob.readResource({ uri: 'file:///secret/key.pem' });
    expect(up.reads.map((r) => r.uri)).toEqual(['file:///secret/key.pem']);
  });

  it('does not re-list every resource server once per read of a URI no server listed', async () => {
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
    proxy = await inProcessProxy({
      policy: '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n',
      upstreams: { a, b },
      gate: { gate_resources: true },
    });
    expect((await proxy.client.readResource({ uri: 'res://a' })).contents).toHaveLength(1);
    const before = { lists, templateLists };

    const unlisted = (i: number) =>
      proxy!.client.readResource({ uri: `res://nobody/${i}` }).then(
        () => 'read',
        () => 'refused',
      );
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
