import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { ConfigError } from '../engine/errors.ts';
import { DEFAULT_MAX_SESSIONS_PER_TOKEN, parseListen, type HttpClientConfig } from './config.ts';
import { ToolCallServer, type RequestId } from './fast-path.ts';
import { MAX_BODY_BYTES, readBody } from './http-body.ts';
import { HttpReply } from './http-reply.ts';
import type { ProxySession } from './proxy-state.ts';
import { noteRawArguments } from './raw-arguments.ts';
import { log, type ProxyRuntime } from './runtime.ts';
import { createSession } from './session.ts';

interface HttpSession {
  id: string;
  session: ProxySession;
  transport: StreamableHTTPServerTransport;
  calls: ToolCallServer;
  client: HttpClientConfig;
  lastSeen: number;
}

/** Sessions whose client vanished without a DELETE are closed after this long without a request. */
const SESSION_IDLE_MS = 60 * 60_000;

/** The default of `[http] max_sessions_per_token`: sessions one token may hold open at once. */
export const MAX_SESSIONS_PER_CLIENT = DEFAULT_MAX_SESSIONS_PER_TOKEN;

export interface HttpHandle {
  server: HttpServer;
  /** The bound address, e.g. `127.0.0.1:8787` (the real port when 0 was asked). */
  address: string;
  close(): Promise<void>;
}

const SUPPORTED_VERSIONS = new Set(SUPPORTED_PROTOCOL_VERSIONS);

/**
 * Streamable HTTP for several clients. Each request needs `Authorization: Bearer <token>`; the
 * token names the principal. Host and Origin must name this server (DNS-rebinding protection).
 * An MCP session stays bound to the token that opened it.
 *
 * A `tools/call` POSTed on an open session is served here on node:http directly (the hot path of
 * a shared gateway); everything else — initialize, notifications, lists, GET streams, DELETE,
 * anything unusual about a call — goes to the SDK's transport. Both see the same checks first.
 */
export async function serveHttp(runtime: ProxyRuntime, listen: string): Promise<HttpHandle> {
  const http = runtime.config.http;
  const clients = http?.clients ?? [];
  if (clients.length === 0)
    throw new ConfigError('http.clients', 'HTTP mode needs at least one [[http.clients]] entry (token → principal)');
  const maxSessions = http?.maxSessionsPerToken ?? MAX_SESSIONS_PER_CLIENT;
  const { host, port } = parseListen(listen);
  const tokens = new TokenTable(clients);
  const sessions = new Map<string, HttpSession>();
  /** Fast-path calls not answered yet: the sweep streams and keeps alive the slow ones. */
  const waiting = new Set<HttpReply>();
  // Several clients with different capabilities: upstreams get none of the client-side ones.
  runtime.core.startUpstreams(undefined);

  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>(http?.allowedOrigins ?? []);

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`http: ${String(err)}`);
      if (!res.headersSent) reply(res, 500, 'internal error');
      else if (!res.writableEnded) res.end();
    });
  });

  const refusals = new RefusalLog(log);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!isMcpPath(req.url)) return reply(res, 404, 'not found; the MCP endpoint is /mcp');
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      refusals.note('403 forbidden host', req);
      return reply(res, 403, 'forbidden host');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin.toLowerCase())) {
      refusals.note('403 forbidden origin', req);
      return reply(res, 403, 'forbidden origin');
    }
    const client = tokens.authenticate(req.headers.authorization);
    if (!client) {
      refusals.note('401 no valid bearer token', req);
      res.setHeader('WWW-Authenticate', 'Bearer realm="kavach"');
      return reply(res, 401, 'a valid bearer token is required');
    }
    const ip = req.socket.remoteAddress?.replace(/^::ffff:/, '');
    const sessionHeader = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
    let body: unknown;
    let text = '';
    if (req.method === 'POST') {
      const read = await readBody(req);
      if (read.kind === 'too-large') {
        // Undrained, the rest of the body is still on the wire: the connection cannot carry another request.
        if (!read.drained) res.setHeader('connection', 'close');
        return reply(res, 413, `request body too large (the limit is ${MAX_BODY_BYTES} bytes)`);
      }
      try {
        text = read.bytes.toString('utf8');
        body = JSON.parse(text);
      } catch {
        return reply(res, 400, 'request body is not JSON');
      }
    }
    if (sessionId !== undefined) {
      const existing = sessions.get(sessionId);
      // A session opened with one token is not usable with another: 404 as if it did not exist.
      if (!existing || existing.client !== client)
        return reply(
          res,
          404,
          `unknown session: it ended (DELETE, an hour idle, or closed as its token's least recently used of ${maxSessions}) or never existed; start a new one with initialize`,
        );
      const now = Date.now();
      existing.lastSeen = now;
      const call = body === undefined ? undefined : fastToolCall(req, body);
      if (call !== undefined) {
        noteRawArguments(call, text);
        const answer = new HttpReply(res, existing.id, waiting, now);
        // A client gone before its answer cancels its call, as a notifications/cancelled would:
        // the server stops, and the id is free again (else it stays taken until the call ends).
        res.once('close', () => {
          if (!res.writableEnded) existing.calls.replyGone(call.id, answer);
        });
        return existing.calls.serve(call.id, call.params, answer, existing.calls.callerAt(ip));
      }
      setAuth(req, client, ip);
      // tools/call the SDK's transport serves (in a batch, say) is cancelled alike when its client goes.
      const ids = toolCallIds(body);
      if (ids.length > 0)
        res.once('close', () => {
          if (!res.writableEnded) for (const requestId of ids) existing.calls.cancel({ requestId, reason: 'the client disconnected' });
        });
      await existing.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) return reply(res, 400, 'no session: start with an initialize request');
    setAuth(req, client, ip);
    const session = createSession(runtime.core, client, { startUpstreamsOnInit: false });
    session.transport = 'tcp';
    if (ip) session.ip = ip;
    const calls = new ToolCallServer(runtime.core, session, noop);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        evictLeastRecentlyUsed(client);
        sessions.set(id, { id, session, transport, calls, client, lastSeen: Date.now() });
        runtime.core.addSession(session);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      runtime.core.removeSession(session);
    };
    await session.server.connect(transport);
    // tools/call that reaches the transport (in a batch, say) is served by the same code.
    calls.install(transport);
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
    if (count >= maxSessions && oldest) {
      log(
        `http: '${client.principalId}' opened more than ${maxSessions} sessions with one token ([http] max_sessions_per_token): closed its least recently used`,
      );
      void oldest.transport.close().catch(() => undefined);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let sweeps = 0;
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const r of waiting) r.tick(now);
    if (++sweeps % 60 !== 0) return;
    const cutoff = now - SESSION_IDLE_MS;
    for (const s of sessions.values()) if (s.lastSeen < cutoff) void s.transport.close().catch(() => undefined);
  }, 1_000);
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

function noop(): void {}

/**
 * The client tokens, compared in constant time: each is kept once, zero-padded to the longest,
 * and a presented token is copied into a buffer of that size and compared with every one of
 * them (no early exit, no hash per request). What a wrong token's timing can tell is only
 * whether it is longer than the longest configured token.
 */
class TokenTable {
  private readonly entries: { padded: Buffer; length: number; client: HttpClientConfig }[];
  private readonly scratch: Buffer;

  constructor(clients: HttpClientConfig[]) {
    const width = Math.max(...clients.map((c) => Buffer.byteLength(c.token)));
    this.scratch = Buffer.alloc(width);
    this.entries = clients.map((client) => {
      const padded = Buffer.alloc(width);
      const length = padded.write(client.token, 'utf8');
      return { padded, length, client };
    });
  }

  authenticate(header: string | undefined): HttpClientConfig | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return undefined;
    const token = m[1] as string;
    const length = Buffer.byteLength(token);
    if (length > this.scratch.length) return undefined;
    this.scratch.fill(0);
    this.scratch.write(token, 'utf8');
    let found: HttpClientConfig | undefined;
    for (const e of this.entries) {
      // Both always evaluated: the length check must not skip the comparison.
      const same = timingSafeEqual(this.scratch, e.padded);
      if (same && e.length === length) found = e.client;
    }
    return found;
  }
}

/** The SDK hands `req.auth` to the handlers as `authInfo`: who asks, and from where. */
function setAuth(req: IncomingMessage, client: HttpClientConfig, ip: string | undefined): void {
  (req as IncomingMessage & { auth?: AuthInfo }).auth = {
    token: '',
    clientId: client.principalId,
    scopes: [],
    ...(ip ? { extra: { ip } } : {}),
  };
}

/**
 * Requests refused before any session (a guessed token, a foreign page), said on stderr so that an
 * operator sees them: once a minute per kind and address, with how many the minute before held.
 */
export class RefusalLog {
  private readonly seen = new Map<string, { until: number; more: number }>();

  constructor(
    private readonly log: (message: string) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  note(what: string, req: IncomingMessage): void {
    const from = req.socket.remoteAddress ?? 'an unknown address';
    const key = `${what} ${from}`;
    const now = this.clock();
    const last = this.seen.get(key);
    if (last !== undefined && now < last.until) {
      last.more++;
      return;
    }
    // Bounded: a flood from many addresses forgets the older ones.
    if (this.seen.size >= 10_000) this.seen.clear();
    this.seen.set(key, { until: now + 60_000, more: 0 });
    const more = last !== undefined && last.more > 0 ? ` (and ${last.more} more in the minute before)` : '';
    this.log(`http: ${what} from ${from}${more}`);
  }
}

/** The ids of the tools/call requests in a POST body (one message or a batch). */
function toolCallIds(body: unknown): RequestId[] {
  const ids: RequestId[] = [];
  for (const m of Array.isArray(body) ? body : [body]) {
    const message = m as { method?: unknown; id?: unknown } | null;
    if (message?.method === 'tools/call' && (typeof message.id === 'string' || typeof message.id === 'number')) ids.push(message.id);
  }
  return ids;
}

/**
 * A POSTed body that is one plain `tools/call` request the fast path may serve, with every header
 * the SDK's transport would insist on as it insists (Accept naming both JSON and SSE, a JSON
 * Content-Type, a supported protocol version). Anything else — a batch, an odd header, a stray
 * member — is left to the SDK, which answers it as it always has.
 */
function fastToolCall(req: IncomingMessage, body: unknown): { id: RequestId; params: Record<string, unknown> | undefined } | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const m = body as Record<string, unknown>;
  if (m.method !== 'tools/call' || m.jsonrpc !== '2.0') return undefined;
  const id = m.id;
  if (typeof id !== 'string' && !Number.isSafeInteger(id)) return undefined;
  const params = m.params;
  if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) return undefined;
  for (const k in m) if (k !== 'jsonrpc' && k !== 'id' && k !== 'method' && k !== 'params') return undefined;
  const headers = req.headers;
  const accept = headers.accept;
  if (accept === undefined || !accept.includes('application/json') || !accept.includes('text/event-stream')) return undefined;
  const type = headers['content-type'];
  if (type === undefined || (type !== 'application/json' && type.toLowerCase().replace(/\s+/g, '') !== 'application/json;charset=utf-8'))
    return undefined;
  const version = headers['mcp-protocol-version'];
  if (version !== undefined && (typeof version !== 'string' || !SUPPORTED_VERSIONS.has(version))) return undefined;
  return { id: id as RequestId, params: params as Record<string, unknown> | undefined };
}

/** `/mcp`, with or without a query; odd spellings go through the URL parser as before. */
function isMcpPath(url: string | undefined): boolean {
  if (url === '/mcp') return true;
  return new URL(url ?? '/', 'http://localhost').pathname === '/mcp';
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
