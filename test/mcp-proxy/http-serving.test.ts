import { request } from 'node:http';
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
          authorization: `Bearer ${TOKEN}`,
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' } : {}),
        },
        body: JSON.stringify(body),
      });
      await res.text();
      return res;
    };
    const open = async () => {
      const res = await post({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
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
    expect(res.status).toBe(413);
    expect(await res.text()).toContain('too large');
  });

  /** One POST from a chosen loopback address (the whole 127/8 is local on Linux). */
  const postFrom = (url: URL, from: string, body: unknown, session?: string) =>
    new Promise<{ status: number; session: string | undefined; text: string }>((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          localAddress: from,
          headers: {
            host: url.host,
            authorization: `Bearer ${TOKEN}`,
            accept: 'application/json, text/event-stream',
            'content-type': 'application/json',
            ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, session: res.headers['mcp-session-id'] as string | undefined, text }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });

  it('judges each request by the address it came from, not the one that opened the session (ip_in, IP drift)', async () => {
    const fx = new FakeUpstream([tool('a')]);
    proxy = await inProcessProxy({
      policy:
        '[[policy]]\nname = "from-here"\neffect = "permit"\nconditions = [{ action = "fx.*" }, { ip_in = { cidrs = ["127.0.0.1/32"] } }]\n',
      upstreams: { fx },
      http: { clients: [{ token: TOKEN, principal_id: 'ci-bot', principal_kind: 'service' }] },
    });
    http = await serveHttp({ config: proxy.config, core: proxy.core } as ProxyRuntime, '127.0.0.1:0');
    const url = new URL(`http://${http.address}/mcp`);
    const opened = await postFrom(url, '127.0.0.1', {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    expect(opened.status).toBe(200);
    const session = opened.session as string;
    await postFrom(url, '127.0.0.1', { jsonrpc: '2.0', method: 'notifications/initialized' }, session);
    const call = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fx__a', arguments: {} } };
    expect((await postFrom(url, '127.0.0.1', call, session)).text).toContain('ran a');
    // The same token and session id, from another address: a stolen session is judged where it is used.
    const elsewhere = await postFrom(url, '127.0.0.2', { ...call, id: 3 }, session);
    expect(elsewhere.text).toContain('Refused');
    expect(fx.calls).toHaveLength(1);
  });
});
