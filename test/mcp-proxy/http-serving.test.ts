import { afterEach, describe, expect, it } from 'vitest';
import type { ProxyRuntime } from '../../src/mcp-proxy/runtime.ts';
import { MAX_SESSIONS_PER_CLIENT, serveHttp, type HttpHandle } from '../../src/mcp-proxy/serve-http.ts';
import { FakeUpstream, inProcessProxy, tool, type InProcessProxy } from './in-process.ts';

const TOKEN = 'ci-token-0123456789abcdef';

describe('serving Streamable HTTP', () => {
  let proxy: InProcessProxy | undefined;
  let http: HttpHandle | undefined;
  afterEach(async () => {
    await http?.close();
    await proxy?.close();
    proxy = undefined;
    http = undefined;
  });

  it('a token holds a bounded number of sessions: opening one more closes its least recently used', async () => {
    proxy = await inProcessProxy({
      policy: '[[policy]]\nname = "fx"\neffect = "permit"\nconditions = [{ action = "fx.*" }]\n',
      upstreams: { fx: new FakeUpstream([tool('a')]) },
      http: { clients: [{ token: TOKEN, principal_id: 'ci-bot', principal_kind: 'service' }] },
    });
    http = await serveHttp({ config: proxy.config, core: proxy.core } as ProxyRuntime, '127.0.0.1:0');
    const url = `http://${http.address}/mcp`;
    const post = async (body: unknown, session?: string) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json',
          ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' } : {}),
        },
        body: JSON.stringify(body),
      });
      await res.text();
      return res;
    };
    const open = async () => {
      const res = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
      expect(res.status).toBe(200);
      return res.headers.get('mcp-session-id') as string;
    };
    const ping = async (session: string) => (await post({ jsonrpc: '2.0', id: 2, method: 'ping' }, session)).status;

    const ids: string[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_CLIENT; i++) ids.push(await open());
    expect(await ping(ids[0] as string)).toBe(200); // the first is now the most recently used
    const newest = await open();
    expect(await ping(ids[1] as string)).toBe(404);
    expect(await ping(ids[0] as string)).toBe(200);
    expect(await ping(newest)).toBe(200);
  });

  it('refuses a request body over 4 MiB', async () => {
    proxy = await inProcessProxy({
      policy: '',
      upstreams: { fx: new FakeUpstream([tool('a')]) },
      http: { clients: [{ token: TOKEN, principal_id: 'ci-bot', principal_kind: 'service' }] },
    });
    http = await serveHttp({ config: proxy.config, core: proxy.core } as ProxyRuntime, '127.0.0.1:0');
    const res = await fetch(`http://${http.address}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(5 * 1024 * 1024) } }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('too large');
  });
});
