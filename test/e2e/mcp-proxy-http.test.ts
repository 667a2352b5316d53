import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVERYTHING,
  cleanup,
  q,
  startHttpProxy,
  startProxy,
  tempDir,
  textOf,
  waitFor,
  write,
  type RunningHttpProxy,
} from './proxy-harness.ts';

const CI_TOKEN = 'ci-token-0123456789abcdef';
const DEV_TOKEN = 'dev-token-0123456789abcdef';

describe('kavach mcp --http', () => {
  let dir: string;
  let proxy: RunningHttpProxy;
  let base: string;

  beforeAll(async () => {
    dir = tempDir();
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "ci-echo"
effect = "permit"
conditions = [{ identity_id = "ci-bot" }, { action = "everything.echo" }, { ip_in = { cidrs = ["127.0.0.0/8"] } }]

[[policy]]
name = "dev-from-office"
effect = "permit"
conditions = [{ identity_id = "dev" }, { action = "everything.echo" }, { ip_in = { cidrs = ["10.0.0.0/8"] } }]
`,
    );
    write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
[servers.everything]
command = ${q(process.execPath)}
args = [${q(EVERYTHING)}, "stdio"]
[http]
[[http.clients]]
token = "\${CI_AGENT_TOKEN}"
principal_id = "ci-bot"
principal_kind = "service"
[[http.clients]]
token = ${q(DEV_TOKEN)}
principal_id = "dev"
principal_kind = "user"
`,
    );
    proxy = await startHttpProxy(join(dir, 'kavach.toml'), { CI_AGENT_TOKEN: CI_TOKEN });
    base = proxy.base;
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  const initialize = (headers: Record<string, string>) =>
    fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } },
      }),
    });

  const connect = (token: string): Promise<Client> => proxy.connect(token, 'http-e2e');

  it('answers 401 without a token and with a wrong one', async () => {
    const none = await initialize({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    expect((await initialize({ authorization: 'Bearer not-the-token-at-all-0000' })).status).toBe(401);
    expect((await initialize({ authorization: `Basic ${Buffer.from(`x:${CI_TOKEN}`).toString('base64')}` })).status).toBe(401);
    // The operator hears of it, once for the burst.
    await waitFor('the refusal on stderr', () => proxy.stderr().includes('http: 401 no valid bearer token from 127.0.0.1'));
    expect(proxy.stderr().split('http: 401').length - 1).toBe(1);
  });

  it('refuses a foreign Origin or Host (DNS rebinding) even with a good token', async () => {
    const auth = { authorization: `Bearer ${CI_TOKEN}` };
    expect((await initialize({ ...auth, origin: 'http://evil.example' })).status).toBe(403);
    const port = new URL(base).port;
    const rebound = await new Promise<number>((resolve, reject) => {
      // fetch will not send a custom Host header; use node:http for that one.
      import('node:http').then(({ request }) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/mcp',
            method: 'POST',
            headers: { ...auth, host: `evil.example:${port}`, 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end('{}');
      }, reject);
    });
    expect(rebound).toBe(403);
    expect((await initialize({ ...auth, origin: `http://localhost:${port}` })).status).toBe(200);
  });

  it('serves a client with a good token as the principal the token names', async () => {
    const ci = await connect(CI_TOKEN);
    const { tools } = await ci.listTools();
    expect(tools.map((t) => t.name)).toEqual(['everything__echo']);
    expect(textOf(await ci.callTool({ name: 'everything__echo', arguments: { message: 'over http' } }))).toBe('Echo: over http');
    // Large arguments are forwarded as the client wrote them (raw-arguments.ts), and arrive whole.
    const large = `é ${'x'.repeat(300_000)} \\ "end"`;
    expect(textOf(await ci.callTool({ name: 'everything__echo', arguments: { message: large } }))).toBe(`Echo: ${large}`);

    // The caller's address reaches the gate: dev may echo only from the office network.
    const dev = await connect(DEV_TOKEN);
    expect((await dev.listTools()).tools.map((t) => t.name)).toEqual(['everything__echo']);
    const refused = await dev.callTool({ name: 'everything__echo', arguments: { message: 'x' } });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("for user 'dev'");
    expect(textOf(refused)).toContain('caller IP in "10.0.0.0/8" (got 127.0.0.1)');
  });

  it('works as a Streamable HTTP upstream of another proxy (url + headers with ${VAR})', async () => {
    write(
      join(dir, 'outer-policy.toml'),
      '[[policy]]\nname = "inner"\neffect = "permit"\nconditions = [{ action = "inner.everything__echo" }]\n',
    );
    write(
      join(dir, 'outer.toml'),
      `
[gate]
policy = "outer-policy.toml"
[identity]
principal_id = "laptop"
principal_kind = "agent"
[tools]
pins_file = "outer-pins.json"
[servers.inner]
url = ${q(base)}
headers = { Authorization = "Bearer \${CI_AGENT_TOKEN}" }
`,
    );
    const outer = await startProxy(join(dir, 'outer.toml'), { env: { CI_AGENT_TOKEN: CI_TOKEN } });
    try {
      expect((await outer.client.listTools()).tools.map((t) => t.name)).toEqual(['inner__everything__echo']);
      const result = await outer.client.callTool({ name: 'inner__everything__echo', arguments: { message: 'two gates' } });
      expect(textOf(result)).toBe('Echo: two gates');
    } finally {
      await outer.close();
    }
  });

  it('keeps a session bound to the token that opened it', async () => {
    const init = await initialize({ authorization: `Bearer ${CI_TOKEN}` });
    const sessionId = init.headers.get('mcp-session-id');
    expect(sessionId).toBeTruthy();
    await init.body?.cancel();
    const hijack = await fetch(base, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${DEV_TOKEN}`,
        'mcp-session-id': sessionId as string,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
    });
    expect(hijack.status).toBe(404);
  });
});
