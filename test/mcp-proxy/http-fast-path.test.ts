import { Agent, request } from 'node:http';
import { CallToolRequestSchema, CancelledNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxyRuntime } from '../../src/mcp-proxy/runtime.ts';
import { RefusalLog, serveHttp, type HttpHandle } from '../../src/mcp-proxy/serve-http.ts';
import { FakeUpstream, inProcessProxy, tool, until, type InProcessProxy } from './in-process.ts';

const TOKEN = 'ci-token-0123456789abcdef';
const OTHER = 'dev-token-0123456789abcdef-longer';
const POLICY = '[[policy]]\nname = "fx"\neffect = "permit"\nconditions = [{ action = "fx.*" }]\n';
const CLIENTS = [
  { token: TOKEN, principal_id: 'ci-bot', principal_kind: 'service' },
  { token: OTHER, principal_id: 'dev', principal_kind: 'user' },
];
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  reusedSocket: boolean;
}

/** One POST over node:http (so the socket it used is known), body as given. */
function post(
  url: URL,
  body: string,
  opts: { token?: string; session?: string; agent?: Agent; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: opts.agent,
        headers: {
          authorization: `Bearer ${opts.token ?? TOKEN}`,
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          ...(opts.session ? { 'mcp-session-id': opts.session, 'mcp-protocol-version': '2025-06-18' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, reusedSocket: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const call = (id: number | string, name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, ...extra } });

describe('HTTP mode: the tools/call fast path and the body limit', () => {
  let proxy: InProcessProxy | undefined;
  let http: HttpHandle | undefined;
  let fx: FakeUpstream;
  let url: URL;
  afterEach(async () => {
    await http?.close();
    await proxy?.close();
    proxy = undefined;
    http = undefined;
  });

  async function start(more: Record<string, unknown> = {}): Promise<void> {
    fx = new FakeUpstream([tool('a'), tool('slow')]);
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx }, http: { clients: CLIENTS, ...more } });
    http = await serveHttp({ config: proxy.config, core: proxy.core } as ProxyRuntime, '127.0.0.1:0');
    url = new URL(`http://${http.address}/mcp`);
  }

  async function open(token = TOKEN, agent?: Agent): Promise<string> {
    const res = await post(url, JSON.stringify(INIT), { token, ...(agent ? { agent } : {}) });
    expect(res.status).toBe(200);
    const session = res.headers['mcp-session-id'] as string;
    await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), { token, session });
    return session;
  }

  it('answers an oversize body 413 and the next request on the same keep-alive connection works', async () => {
    await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const session = await open(TOKEN, agent);
      const big = call(2, 'fx__a', { pad: 'x'.repeat(5 * 1024 * 1024) });
      const refused = await post(url, big, { session, agent });
      expect(refused.status).toBe(413);
      expect(refused.text).toContain('too large');
      const next = await post(url, call(3, 'fx__a'), { session, agent });
      expect(next.status).toBe(200);
      // Drained: the same socket carried the next request.
      expect(next.reusedSocket).toBe(true);
      expect(JSON.parse(next.text)).toMatchObject({ id: 3, result: { content: [{ text: 'ran a' }] } });
      expect(fx.calls).toHaveLength(1);
    } finally {
      agent.destroy();
    }
  });

  it('closes the connection after a body too large to drain, and the client carries on on a new one', async () => {
    await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const session = await open(TOKEN, agent);
      const huge = call(2, 'fx__a', { pad: 'x'.repeat(17 * 1024 * 1024) });
      const refused = await post(url, huge, { session, agent });
      expect(refused.status).toBe(413);
      expect(refused.headers.connection).toBe('close');
      const next = await post(url, call(3, 'fx__a'), { session, agent });
      expect(next.status).toBe(200);
      expect(next.reusedSocket).toBe(false);
      expect(JSON.parse(next.text)).toMatchObject({ id: 3, result: { content: [{ text: 'ran a' }] } });
    } finally {
      agent.destroy();
    }
  });

  it('answers a tools/call on its session as one JSON body, keeping every refusal of the SDK path', async () => {
    await start();
    const session = await open();
    const ok = await post(url, call('s-1', 'fx__a'), { session });
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('application/json');
    expect(ok.headers['mcp-session-id']).toBe(session);
    expect(JSON.parse(ok.text)).toEqual({ jsonrpc: '2.0', id: 's-1', result: { content: [{ type: 'text', text: 'ran a' }] } });

    // Another token on this session: as if the session did not exist.
    expect((await post(url, call(2, 'fx__a'), { session, token: OTHER })).status).toBe(404);
    expect((await post(url, call(2, 'fx__a'), { session, token: 'not-a-token-at-all-000000' })).status).toBe(401);
    expect((await post(url, call(2, 'fx__a'), { session, token: `${TOKEN}x` })).status).toBe(401);
    expect((await post(url, call(2, 'fx__a'), { session, token: TOKEN.slice(0, -1) })).status).toBe(401);
    expect((await post(url, call(2, 'fx__a'), { session, headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await post(url, call(2, 'fx__a'), { session, headers: { host: `evil.example:${url.port}` } })).status).toBe(403);
    expect((await post(url, call(2, 'fx__a'), { session: 'no-such-session' })).status).toBe(404);
    // What the SDK's transport insists on, it still insists on.
    expect((await post(url, call(2, 'fx__a'), { session, headers: { accept: 'application/json' } })).status).toBe(406);
    expect((await post(url, call(2, 'fx__a'), { session, headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await post(url, call(2, 'fx__a'), { session, headers: { 'mcp-protocol-version': '1999-01-01' } })).status).toBe(400);
    // Only the first call ran.
    expect(fx.calls).toHaveLength(1);
    // A session is answered as its own principal's: the other token opens its own.
    const devSession = await open(OTHER);
    expect(JSON.parse((await post(url, call(4, 'fx__a'), { session: devSession, token: OTHER })).text)).toMatchObject({ id: 4 });
  });

  it('streams progress before the answer (SSE) and ends a cancelled call without one', async () => {
    await start();
    const server = fx.server as NonNullable<FakeUpstream['server']>;
    let release: (() => void) | undefined;
    const cancelled: unknown[] = [];
    server.setNotificationHandler(CancelledNotificationSchema, (n) => void cancelled.push(n.params));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      fx.calls.push(req.params);
      if (req.params.name === 'slow') await new Promise<void>((r) => (release = r));
      const token = req.params._meta?.progressToken;
      if (token !== undefined)
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } });
      return { content: [{ type: 'text', text: `ran ${req.params.name}` }] };
    });
    const session = await open();
    const streamed = await post(url, call(5, 'fx__a', { _meta: { progressToken: 'p-5' } }), { session });
    expect(streamed.headers['content-type']).toBe('text/event-stream');
    const events = streamed.text
      .split('\n\n')
      .filter((e) => e.startsWith('event: message'))
      .map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)));
    expect(events).toMatchObject([
      { method: 'notifications/progress', params: { progressToken: 'p-5', progress: 1 } },
      { id: 5, result: { content: [{ text: 'ran a' }] } },
    ]);

    // A call the SDK's transport serves (a one-item batch) streams its progress on its own POST too.
    const batched = await post(url, `[${call(7, 'fx__a', { _meta: { progressToken: 'p-7' } })}]`, { session });
    const batchEvents = batched.text
      .split('\n\n')
      .filter((e) => e.startsWith('event: message'))
      .map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)));
    expect(JSON.stringify(batchEvents)).toContain('"progressToken":"p-7"');
    expect(JSON.stringify(batchEvents)).toContain('"ran a"');

    const pending = post(url, call(6, 'fx__slow'), { session });
    await until('the slow call upstream', () => fx.calls.length >= 2);
    const cancel = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 6, reason: 'enough' } }),
      { session },
    );
    expect(cancel.status).toBe(202);
    await until('the cancellation upstream', () => cancelled.length >= 1);
    expect(cancelled).toMatchObject([{ reason: 'enough' }]);
    release?.();
    const ended = await pending;
    expect(ended.status).toBe(200);
    expect(ended.text).not.toContain('"id":6');
  });

  it('cancels the call of a client that disconnects before its answer, and frees its id', async () => {
    await start();
    const server = fx.server as NonNullable<FakeUpstream['server']>;
    const cancelled: { reason?: string }[] = [];
    server.setNotificationHandler(CancelledNotificationSchema, (n) => void cancelled.push(n.params));
    fx.respond = (params) =>
      params.name === 'slow' ? (new Promise(() => undefined) as never) : { content: [{ type: 'text', text: 'ran a' }] };
    const session = await open();
    const agent = new Agent({ keepAlive: false });
    const gone = post(url, call(8, 'fx__slow'), { session, agent }).catch(() => 'aborted');
    await until('the slow call upstream', () => fx.calls.length >= 1);
    agent.destroy();
    expect(await gone).toBe('aborted');
    await until('the cancellation upstream', () => cancelled.length >= 1);
    expect(cancelled[0]?.reason).toBe('the client disconnected');
    // The id is free again at once (not only when the upstream's call would have timed out).
    const again = await post(url, call(8, 'fx__a'), { session });
    expect(JSON.parse(again.text)).toMatchObject({ id: 8, result: { content: [{ text: 'ran a' }] } });
    // The same through the SDK's transport (a batch).
    const batchAgent = new Agent({ keepAlive: false });
    const batchGone = post(url, `[${call(9, 'fx__slow')}]`, { session, agent: batchAgent }).catch(() => 'aborted');
    await until('the batched slow call upstream', () => fx.calls.length >= 3);
    batchAgent.destroy();
    expect(await batchGone).toBe('aborted');
    await until('the second cancellation upstream', () => cancelled.length >= 2);
    expect(cancelled[1]?.reason).toBe('the client disconnected');
  });

  it('turns the answer of a slow call into an event stream, so bytes flow while it waits', async () => {
    await start();
    (fx.server as NonNullable<FakeUpstream['server']>).setRequestHandler(CallToolRequestSchema, async (req) => {
      fx.calls.push(req.params);
      // The sweep runs each second: a call still unanswered after 1 s streams by the next one.
      await new Promise((r) => setTimeout(r, 2_300));
      return { content: [{ type: 'text', text: 'late' }] };
    });
    const session = await open();
    const answer = await post(url, call(9, 'fx__a'), { session });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/event-stream');
    const data = answer.text.slice(answer.text.indexOf('data: ') + 6).trim();
    expect(JSON.parse(data)).toMatchObject({ id: 9, result: { content: [{ text: 'late' }] } });
  });

  it('caps [http] max_calls_per_token calls in flight per token, on every path, and refuses the next one RATE_LIMITED at once', async () => {
    fx = new FakeUpstream([tool('a'), tool('slow')]);
    const records: Record<string, unknown>[] = [];
    const logs: string[] = [];
    proxy = await inProcessProxy({
      policy: POLICY,
      upstreams: { fx },
      http: { clients: CLIENTS, max_calls_per_token: 2 },
      outcomes: { append: async (r) => void records.push(r as unknown as Record<string, unknown>) },
      log: (m) => logs.push(m),
    });
    http = await serveHttp({ config: proxy.config, core: proxy.core } as ProxyRuntime, '127.0.0.1:0');
    url = new URL(`http://${http.address}/mcp`);
    const releases: (() => void)[] = [];
    fx.respond = (params) =>
      params.name === 'slow'
        ? (new Promise((r) => releases.push(() => r({ content: [{ type: 'text', text: 'ran slow' }] }))) as never)
        : { content: [{ type: 'text', text: 'ran a' }] };
    // Two sessions of one token share its cap; the second call comes through the SDK's transport (a batch).
    const [first, second] = [await open(), await open()];
    const slow1 = post(url, call(1, 'fx__slow'), { session: first });
    const slow2 = post(url, `[${call(2, 'fx__slow')}]`, { session: second });
    await until('both slow calls upstream', () => fx.calls.length === 2);

    const refused = JSON.parse((await post(url, call(3, 'fx__a'), { session: first })).text);
    expect(refused.id).toBe(3);
    expect(refused.result.isError).toBe(true);
    expect(refused.result.content[0].text).toContain('[RATE_LIMITED]');
    expect(refused.result.content[0].text).toContain('max_calls_per_token');
    expect(refused.result._meta['dev.kavach/verdict']).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED', evaluator: 'proxy' });
    // A batch is no way around it.
    const batchRefused = await post(url, `[${call(4, 'fx__a')}]`, { session: second });
    expect(batchRefused.text).toContain('RATE_LIMITED');
    expect(fx.calls).toHaveLength(2);
    expect(records.filter((r) => r.type === 'kavach.mcp_refusal')).toMatchObject([
      { code: 'RATE_LIMITED', action: 'fx.a', principal: 'ci-bot' },
      { code: 'RATE_LIMITED', action: 'fx.a', principal: 'ci-bot' },
    ]);
    expect(logs.filter((l) => l.includes('max_calls_per_token'))).toHaveLength(1);

    // Another token is not held back by this one.
    const devSession = await open(OTHER);
    expect(JSON.parse((await post(url, call(5, 'fx__a'), { session: devSession, token: OTHER })).text)).toMatchObject({
      id: 5,
      result: { content: [{ text: 'ran a' }] },
    });
    // Once a call ends, the token has room again.
    for (const release of releases) release();
    expect(JSON.parse((await slow1).text)).toMatchObject({ id: 1, result: { content: [{ text: 'ran slow' }] } });
    expect((await slow2).text).toContain('ran slow');
    expect(JSON.parse((await post(url, call(6, 'fx__a'), { session: first })).text)).toMatchObject({
      id: 6,
      result: { content: [{ text: 'ran a' }] },
    });
  });

  it('holds [http] max_sessions_per_token sessions per token, closing the least recently used, and says so', async () => {
    await start({ max_sessions_per_token: 2 });
    const first = await open();
    const second = await open();
    const other = await open(OTHER);
    await post(url, call(1, 'fx__a'), { session: first });
    await open();
    const gone = await post(url, call(2, 'fx__a'), { session: second });
    expect(gone.status).toBe(404);
    expect(gone.text).toContain('least recently used of 2');
    expect((await post(url, call(3, 'fx__a'), { session: first })).status).toBe(200);
    // Another token's sessions are not counted against this one.
    expect((await post(url, call(4, 'fx__a'), { session: other, token: OTHER })).status).toBe(200);
  });
});

describe('requests refused before any session', () => {
  it('are said on stderr once a minute per kind and address, with how many followed', async () => {
    const lines: string[] = [];
    let now = 0;
    const refusals = new RefusalLog(
      (m) => lines.push(m),
      () => now,
    );
    const from = (address: string) => ({ socket: { remoteAddress: address } }) as never;
    for (let i = 0; i < 5; i++) refusals.note('401 no valid bearer token', from('10.0.0.9'));
    refusals.note('403 forbidden origin', from('10.0.0.9'));
    refusals.note('401 no valid bearer token', from('10.0.0.7'));
    now = 61_000;
    refusals.note('401 no valid bearer token', from('10.0.0.9'));
    expect(lines).toEqual([
      'http: 401 no valid bearer token from 10.0.0.9',
      'http: 403 forbidden origin from 10.0.0.9',
      'http: 401 no valid bearer token from 10.0.0.7',
      'http: 401 no valid bearer token from 10.0.0.9 (and 4 more in the minute before)',
    ]);
  });
});
