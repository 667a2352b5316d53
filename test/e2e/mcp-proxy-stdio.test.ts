import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  LoggingMessageNotificationSchema,
  type JSONRPCMessage,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVERYTHING,
  FILESYSTEM,
  FIXTURE,
  cleanup,
  q,
  read,
  startProxy,
  tempDir,
  textOf,
  waitFor,
  write,
  type RunningProxy,
} from './proxy-harness.ts';

let dir: string;
let root: string;
let events: string;
let proxy: RunningProxy;
let listChanged = 0;
const protocolErrors: string[] = [];

beforeAll(async () => {
  dir = tempDir();
  root = join(dir, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'hello.txt'), 'hello from the root\n');
  writeFileSync(join(dir, 'outside.txt'), 'secret outside the root\n');
  events = join(dir, 'events.log');
  write(
    join(dir, 'policy.toml'),
    `
[[policy]]
name = "echo"
effect = "permit"
conditions = [{ action = "everything.echo" }]

[[policy]]
name = "no-secret-echo"
effect = "refuse"
conditions = [{ action = "everything.echo" }, { param_glob = { field = "message", pattern = "*password*" } }]

[[policy]]
name = "sums"
effect = "permit"
conditions = [{ action = "everything.get-sum" }, { rate_limit = { max = 3, window = "1h" } }]

[[policy]]
name = "everything-misc"
effect = "permit"
conditions = [{ action = ["everything.trigger-long-running-operation", "everything.trigger-sampling-request", "everything.toggle-simulated-logging"] }]

[[policy]]
name = "fixture"
effect = "permit"
conditions = [{ action = ["fx.slow", "fx.meta", "fx.fail", "fx.sample", "fx.roots", "fx.elicit"] }]

[[policy]]
name = "crashy"
effect = "permit"
conditions = [{ action = "crashy.*" }]

[[policy]]
name = "fs-read"
effect = "permit"
conditions = [
  { action = ["fs.read_text_file", "fs.list_directory", "fs.get_file_info"] },
  { path_within = { field = "path", roots = [${q(root)}] } },
]
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
roles = ["dev"]

[servers.everything]
command = ${q(process.execPath)}
args = [${q(EVERYTHING)}, "stdio"]

[servers.fs]
command = ${q(process.execPath)}
args = [${q(FILESYSTEM)}, ${q(root)}]

[servers.fx]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
env = { FIXTURE_EVENTS = ${q(events)} }

[servers.crashy]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]

[servers.broken]
command = ${q(join(dir, 'no-such-binary'))}
`,
  );
  proxy = await startProxy(join(dir, 'kavach.toml'), { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  proxy.client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: 'assistant',
    content: { type: 'text', text: 'hi from the client' },
    model: 'test-model',
  }));
  proxy.client.setRequestHandler(ElicitRequestSchema, async (request) => ({
    action: 'accept',
    content: { name: `ada (asked: ${String(request.params.message)})` },
  }));
  proxy.client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: `file://${root}`, name: 'root' }] }));
  proxy.client.onerror = (err) => protocolErrors.push(err.message);
  proxy.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    listChanged++;
  });
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  cleanup(dir);
});

const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

describe('kavach mcp over stdio in front of real servers', () => {
  it('lists only the tools the principal could be permitted, as <server>__<tool>', async () => {
    const expected = ['everything__echo', 'everything__get-sum', 'fs__read_text_file', 'fs__list_directory', 'fx__slow', 'crashy__crash'];
    // On a loaded machine a server may miss the first listing's 10 s wait; it is announced later.
    const tools = await waitFor(
      'every server to list its tools',
      async () => {
        const listed = (await proxy.client.listTools()).tools;
        return expected.every((n) => listed.some((t) => t.name === n)) ? listed : undefined;
      },
      25_000,
    );
    const names = tools.map((t) => t.name);
    for (const n of names) expect(n).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(names).toEqual(expect.arrayContaining(expected));
    expect(names).not.toContain('everything__get-env');
    expect(names).not.toContain('fs__write_file');
    expect(names).not.toContain('fx__mutable');
    const echo = tools.find((t) => t.name === 'everything__echo');
    expect(echo?.inputSchema.properties).toHaveProperty('message');
  });

  it('forwards a permitted call and returns the upstream result', async () => {
    const result = await call('everything__echo', { message: 'hello' });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('Echo: hello');
  });

  it('refuses with isError, the refusal text and the verdict in _meta', async () => {
    const result = await call('everything__echo', { message: 'my password is hunter2' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      "Refused by policy [POLICY_DENIED] policy: 'no-secret-echo' refuses 'everything.echo' for agent 'alice-laptop'.",
    );
    expect(result._meta?.['dev.kavach/verdict']).toMatchObject({ kind: 'refuse', code: 'POLICY_DENIED', policy: 'no-secret-echo' });

    const unlisted = await call('everything__get-env');
    expect(unlisted.isError).toBe(true);
    expect(textOf(unlisted)).toContain('[NO_POLICY_MATCH]');
    expect(textOf(unlisted)).toContain("'everything.get-env'");
  });

  it('rate limits: the fourth call in the window is RATE_LIMITED with a retry time', async () => {
    for (let i = 0; i < 3; i++) expect(textOf(await call('everything__get-sum', { a: i, b: 1 }))).toContain('The sum of');
    const fourth = await call('everything__get-sum', { a: 9, b: 1 });
    expect(fourth.isError).toBe(true);
    expect(textOf(fourth)).toMatch(/^Refused by policy \[RATE_LIMITED\] policy: 'sums' allows 3 calls per 1h; retry after \d+s\.$/);
    expect(fourth._meta?.['dev.kavach/verdict']).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) });
  });

  it('lets the filesystem server read inside the root', async () => {
    const result = await call('fs__read_text_file', { path: join(root, 'hello.txt') });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toContain('hello from the root');
  });

  it.each([
    ['a .. segment', () => `${root}/../outside.txt`, 'has a ".." segment'],
    ['a deeper .. segment', () => `${root}/sub/../../outside.txt`, 'has a ".." segment'],
    ['an absolute path outside the root', () => join(dir, 'outside.txt'), 'is outside the root'],
    ['a sibling with the root as prefix', () => `${root}-evil/x.txt`, 'is outside the root'],
    ['percent-encoded dots', () => `${root}/%2e%2e/outside.txt`, 'contains a percent-encoded'],
    ['a percent-encoded slash', () => `${root}/..%2foutside.txt`, 'contains a percent-encoded'],
    ['a backslash', () => `${root}\\..\\outside.txt`, 'contains a backslash'],
    ['a relative path', () => 'outside.txt', 'is a relative path'],
    ['a NUL byte', () => `${root}/hello.txt\0/../../outside.txt`, 'contains a NUL character'],
  ])('refuses path traversal by path_within: %s', async (_label, path, cause) => {
    const result = await call('fs__read_text_file', { path: path() });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('[NO_POLICY_MATCH]');
    expect(textOf(result)).toContain(`'fs-read' does not allow the value of path: it ${cause}`);
    expect(textOf(result)).not.toContain(path()); // the reason is audited even where record_args is off
    expect(textOf(result)).not.toContain('secret outside the root');
  });

  it('re-tags progress notifications with the client token, all before the result', async () => {
    // Watch the wire: the SDK client itself drops a progress that arrives in the same read as the
    // result (it dispatches notifications a microtask late), so its onprogress cannot be the judge.
    const seen: string[] = [];
    const deliver = proxy.transport.onmessage;
    proxy.transport.onmessage = (message: JSONRPCMessage) => {
      const m = message as { method?: string; id?: unknown; params?: { progressToken?: unknown; progress?: number } };
      if (m.method === 'notifications/progress' && m.params?.progressToken === 'client-token-7') {
        seen.push(`progress ${m.params.progress}`);
        return;
      }
      if (m.id !== undefined && m.method === undefined) seen.push('result');
      deliver?.(message);
    };
    try {
      const result = await proxy.client.request(
        {
          method: 'tools/call',
          params: {
            name: 'everything__trigger-long-running-operation',
            arguments: { duration: 0.4, steps: 4 },
            _meta: { progressToken: 'client-token-7' },
          },
        },
        CallToolResultSchema,
      );
      expect(textOf(result)).toContain('Long running operation completed');
    } finally {
      proxy.transport.onmessage = deliver;
    }
    expect(seen).toEqual(['progress 1', 'progress 2', 'progress 3', 'progress 4', 'result']);
  });

  it('propagates cancellation to the upstream', async () => {
    const controller = new AbortController();
    const pending = proxy.client.request(
      { method: 'tools/call', params: { name: 'fx__slow', arguments: { ms: 5_000 } } },
      CallToolResultSchema,
      { signal: controller.signal },
    );
    await waitFor('the slow call to start upstream', () => read(events).includes('slow start'));
    controller.abort('enough');
    await expect(pending).rejects.toThrow();
    await waitFor('the upstream to see the cancellation', () => read(events).includes('cancelled'));
    expect(read(events)).not.toContain('slow done');
  });

  it('forwards _meta but never the client progress token, and adds no permit without keys', async () => {
    const result = await proxy.client.callTool({ name: 'fx__meta', arguments: {}, _meta: { 'example.com/trace': 'abc' } });
    const meta = JSON.parse(textOf(result)) as Record<string, unknown>;
    expect(meta['example.com/trace']).toBe('abc');
    expect(meta).not.toHaveProperty('dev.kavach/permit');
  });

  it('answers a malformed tools/call with a JSON-RPC InvalidParams error', async () => {
    await expect(proxy.client.request({ method: 'tools/call', params: { name: 42 } } as never, CallToolResultSchema)).rejects.toMatchObject(
      { code: -32602 },
    );
  });

  it('refuses hostile arguments (array, prototype keys, deep nesting) without forwarding them', async () => {
    await expect(
      proxy.client.request(
        { method: 'tools/call', params: { name: 'everything__echo', arguments: ['hi'] } } as never,
        CallToolResultSchema,
      ),
    ).rejects.toMatchObject({ code: -32602 });
    let deep: Record<string, unknown> = { message: 'x' };
    for (let i = 0; i < 40; i++) deep = { message: 'x', nested: deep };
    for (const args of [
      JSON.parse('{"message":"x","__proto__":{"polluted":true}}') as Record<string, unknown>,
      { message: 'x', constructor: { prototype: {} } },
      deep,
    ]) {
      const result = await call('everything__echo', args);
      expect(result.isError).toBe(true);
      expect(result._meta?.['dev.kavach/verdict']).toMatchObject({ kind: 'refuse', code: 'INVALID_CONTEXT' });
    }
  });

  it('passes a tool error through as a tool error', async () => {
    const result = await call('fx__fail');
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe('it failed');
  });

  it('relays sampling, elicitation and roots requests from an upstream to the client', async () => {
    expect(textOf(await call('fx__sample'))).toBe('sampled: hi from the client');
    expect(textOf(await call('fx__elicit'))).toBe('accept: ada (asked: your name?)');
    expect(JSON.parse(textOf(await call('fx__roots')))).toEqual([{ uri: `file://${root}`, name: 'root' }]);
    const everything = await call('everything__trigger-sampling-request', { prompt: 'hello', maxTokens: 5 });
    expect(textOf(everything)).toContain('hi from the client');
  });

  it('passes resources, resource templates and prompts through', async () => {
    const { resources } = await proxy.client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const first = resources[0] as { uri: string };
    const read = await proxy.client.readResource({ uri: first.uri });
    expect(read.contents[0]?.uri).toBe(first.uri);
    const { resourceTemplates } = await proxy.client.listResourceTemplates();
    expect(resourceTemplates.length).toBeGreaterThan(0);
    const { prompts } = await proxy.client.listPrompts();
    const simple = prompts.find((p) => p.name === 'everything__simple-prompt');
    expect(simple).toBeDefined();
    const got = await proxy.client.getPrompt({ name: 'everything__simple-prompt' });
    expect(got.messages.length).toBeGreaterThan(0);
    const completion = await proxy.client.complete({
      ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
      argument: { name: 'department', value: 'S' },
    });
    expect(completion.completion.values).toEqual(['Sales', 'Support']);
  });

  it('forwards the log level upstream and upstream log messages to the client, tagged with the server', async () => {
    const messages: { logger?: string; level: string }[] = [];
    proxy.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      messages.push(n.params);
    });
    await proxy.client.setLoggingLevel('debug');
    await call('everything__toggle-simulated-logging');
    try {
      const first = await waitFor('an upstream log message', () => messages[0]);
      expect(first.logger).toMatch(/^everything(\/|$)/);
    } finally {
      await call('everything__toggle-simulated-logging');
    }
  });

  it('keeps serving when one upstream never starts', async () => {
    const result = await call('everything__echo', { message: 'still here' });
    expect(textOf(result)).toBe('Echo: still here');
    expect(proxy.stderr()).toContain('upstream broken: failed to start');
  });

  it('survives an upstream crash: others keep working, the crashed one is restarted', async () => {
    const pidBefore = textOf(await call('crashy__pid'));
    await call('crashy__crash').catch(() => undefined);
    // While it is down, its tools answer with a clear error; the others are unaffected.
    expect(textOf(await call('everything__echo', { message: 'during' }))).toBe('Echo: during');
    const pidAfter = await waitFor('crashy to be restarted', async () => {
      const r = await call('crashy__pid');
      return r.isError ? undefined : textOf(r);
    });
    expect(pidAfter).not.toBe(pidBefore);
    expect(proxy.stderr()).toMatch(/upstream crashy: the connection closed \(the process exited with code 1\); restarting in \d+ ms/);
  });

  it('never writes anything but protocol to stdout, and the tool list announces changes', () => {
    expect(protocolErrors, protocolErrors.join('\n')).toEqual([]);
    expect(listChanged).toBeGreaterThan(0);
  });
});
