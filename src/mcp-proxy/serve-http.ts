import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { ConfigError } from '../engine/errors.ts';
import { parseListen, type HttpClientConfig } from './config.ts';
import type { ProxySession } from './proxy-state.ts';
import { log, type ProxyRuntime } from './runtime.ts';
import { createSession } from './session.ts';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

interface HttpSession {
  session: ProxySession;
  transport: StreamableHTTPServerTransport;
  client: HttpClientConfig;
  lastSeen: number;
}

/** Sessions whose client vanished without a DELETE are closed after this long without a request. */
const SESSION_IDLE_MS = 60 * 60_000;

/** Sessions one token may hold open; opening another closes its least recently used one. */
export const MAX_SESSIONS_PER_CLIENT = 32;

export interface HttpHandle {
  server: HttpServer;
  /** The bound address, e.g. `127.0.0.1:8787` (the real port when 0 was asked). */
  address: string;
  close(): Promise<void>;
}

/**
 * Streamable HTTP for several clients. Each request needs `Authorization: Bearer <token>`; the
 * token names the principal. Host and Origin must name this server (DNS-rebinding protection).
 * An MCP session stays bound to the token that opened it.
 */
export async function serveHttp(runtime: ProxyRuntime, listen: string): Promise<HttpHandle> {
  const http = runtime.config.http;
  const clients = http?.clients ?? [];
  if (clients.length === 0)
    throw new ConfigError('http.clients', 'HTTP mode needs at least one [[http.clients]] entry (token → principal)');
  const { host, port } = parseListen(listen);
  const tokens = clients.map((c) => ({ digest: sha256(c.token), client: c }));
  const sessions = new Map<string, HttpSession>();
  // Several clients with different capabilities: upstreams get none of the client-side ones.
  runtime.core.startUpstreams(undefined);

  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>(http?.allowedOrigins ?? []);

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      log(`http: ${String(err)}`);
      if (!res.headersSent) reply(res, 500, 'internal error');
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/mcp') return reply(res, 404, 'not found; the MCP endpoint is /mcp');
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) return reply(res, 403, 'forbidden host');
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin.toLowerCase())) return reply(res, 403, 'forbidden origin');
    const client = authenticate(req.headers.authorization);
    if (!client) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="kavach"');
      return reply(res, 401, 'a valid bearer token is required');
    }
    const ip = req.socket.remoteAddress?.replace(/^::ffff:/, '');
    // Each request is judged from where it came (`ip_in`, IP drift), not from where its session
    // opened: a session id used from elsewhere must not keep the first address. The SDK hands
    // `req.auth` to the handlers as `authInfo`.
    (req as IncomingMessage & { auth?: AuthInfo }).auth = {
      token: '',
      clientId: client.principalId,
      scopes: [],
      ...(ip ? { extra: { ip } } : {}),
    };
    const sessionHeader = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
    let body: unknown;
    if (req.method === 'POST') {
      try {
        body = await readJson(req);
      } catch (err) {
        return reply(res, 400, (err as Error).message);
      }
    }
    if (sessionId !== undefined) {
      const existing = sessions.get(sessionId);
      // A session opened with one token is not usable with another: 404 as if it did not exist.
      if (!existing || existing.client !== client) return reply(res, 404, 'unknown session');
      existing.lastSeen = Date.now();
      await existing.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) return reply(res, 400, 'no session: start with an initialize request');
    const session = createSession(runtime.core, client, { startUpstreamsOnInit: false });
    session.transport = 'tcp';
    if (ip) session.ip = ip;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        evictLeastRecentlyUsed(client);
        sessions.set(id, { session, transport, client, lastSeen: Date.now() });
        runtime.core.addSession(session);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      runtime.core.removeSession(session);
    };
    await session.server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  /** Each session holds a Server and its state: a client that never closes them must not exhaust memory. */
  function evictLeastRecentlyUsed(client: HttpClientConfig): void {
    let count = 0;
    let oldest: HttpSession | undefined;
    for (const s of sessions.values()) {
      if (s.client !== client) continue;
      count++;
      if (!oldest || s.lastSeen < oldest.lastSeen) oldest = s;
    }
    if (count >= MAX_SESSIONS_PER_CLIENT && oldest) void oldest.transport.close().catch(() => undefined);
  }

  function authenticate(header: string | undefined): HttpClientConfig | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return undefined;
    const digest = sha256(m[1] as string);
    let found: HttpClientConfig | undefined;
    // Compare against every token so timing does not say which one was close.
    for (const t of tokens) if (timingSafeEqual(t.digest, digest)) found = t.client;
    return found;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const sweeper = setInterval(() => {
    const cutoff = Date.now() - SESSION_IDLE_MS;
    for (const s of sessions.values()) if (s.lastSeen < cutoff) void s.transport.close().catch(() => undefined);
  }, 60_000);
  sweeper.unref();
  const bound = server.address();
  const realPort = typeof bound === 'object' && bound ? bound.port : port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const names = new Set([hostPart, 'localhost', '127.0.0.1', '[::1]']);
  // Loopback names are always fine; a server bound to a real interface is reached by its address.
  allowedHosts = new Set([...[...names].map((n) => `${n}:${realPort}`), ...(http?.allowedHosts ?? [])].map((h) => h.toLowerCase()));
  allowedOrigins = new Set([
    ...[...allowedOrigins].map((o) => o.toLowerCase()),
    ...[...names].map((n) => `http://${n}:${realPort}`.toLowerCase()),
  ]);
  const address = `${hostPart}:${realPort}`;
  log(`listening on http://${address}/mcp (${clients.length} client token${clients.length === 1 ? '' : 's'})`);
  if (!isLoopback(host))
    log(
      `warning: ${host} is not a loopback address and this server speaks plain HTTP: bearer tokens and calls cross the network unencrypted; put a TLS proxy in front of it`,
    );
  return {
    server,
    address,
    async close() {
      clearInterval(sweeper);
      for (const s of sessions.values()) await s.transport.close().catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error('request body is not JSON');
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
