import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolResultSchema, ErrorCode, McpError, type CallToolResult,
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
  LoggingMessageNotificationSchema, PromptListChangedNotificationSchema, ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema,
  type ClientCapabilities, type LoggingLevel, type LoggingMessageNotification, type Prompt, type ResourceUpdatedNotification,
  type ServerCapabilities, type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { ServerConfig } from './config.ts';
import { ChildProcessTransport, type ChildServerParams } from './line-transport.ts';

interface PendingCall {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

export type UpstreamState = 'idle' | 'starting' | 'ready' | 'down' | 'closed';

/**
 * What a forwarded call needs of a cancellation signal: an `AbortSignal` fits, and so does the
 * fast path's lighter one (an AbortController per call costs more than the rest of the call).
 */
export interface CallSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Opens the connection to one upstream (the default: a child process or Streamable HTTP). */
export type TransportFactory = (config: ServerConfig) => Transport;

/** A server→client request the proxy relays to a downstream client. */
export type ClientRequestRelay = (request: { method: string; params?: Record<string, unknown> }, signal: AbortSignal) => Promise<Record<string, unknown>>;

export interface UpstreamEvents {
  log(message: string): void;
  /** Tools, prompts or resources of this upstream changed (or it came up or went down). */
  changed(upstream: Upstream, what: 'tools' | 'prompts' | 'resources'): Promise<void> | void;
  logMessage(upstream: Upstream, params: LoggingMessageNotification['params']): void;
  resourceUpdated(upstream: Upstream, params: ResourceUpdatedNotification['params']): void;
  relay: ClientRequestRelay;
}

/**
 * One forwarded tools/call awaiting its answer: its timeout, its cancellation and its settling in
 * one object (a closure per step would be allocated, and under tsx named, on every call).
 */
class ForwardedCall implements PendingCall {
  readonly promise: Promise<CallToolResult>;
  readonly sendFailed: (err: unknown) => void;
  private readonly onAbort: () => void;
  private settle!: (result: CallToolResult) => void;
  private fail!: (err: Error) => void;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly id: string,
    private readonly server: string,
    private readonly pending: Map<string, PendingCall>,
    private readonly transport: Transport,
    private readonly signal: CallSignal,
    private readonly timeoutMs: number,
  ) {
    this.promise = new Promise<CallToolResult>((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
    this.onAbort = () => {
      this.finish();
      this.cancelUpstream(String(this.signal.reason ?? 'cancelled by the client'));
      this.fail(new Error('the call was cancelled'));
    };
    this.sendFailed = (err) => this.pending.get(this.id)?.reject(err as Error);
    this.timer = setTimeout(timedOut, timeoutMs, this);
    this.timer.unref();
    signal.addEventListener('abort', this.onAbort, { once: true });
    pending.set(id, this);
  }

  resolve(result: unknown): void {
    this.finish();
    if (isPlainTextResult(result)) {
      this.settle(result as CallToolResult);
      return;
    }
    const parsed = CallToolResultSchema.safeParse(result);
    if (parsed.success) this.settle(result as CallToolResult);
    else this.fail(new Error(`'${this.server}' returned an invalid tools/call result: ${parsed.error.message}`));
  }

  reject(err: Error): void {
    this.finish();
    this.fail(err);
  }

  timedOut(): void {
    this.finish();
    this.cancelUpstream('timed out');
    this.fail(new McpError(ErrorCode.RequestTimeout, `no answer from '${this.server}' within ${this.timeoutMs} ms`));
  }

  private finish(): void {
    this.pending.delete(this.id);
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
  }

  private cancelUpstream(reason: string): void {
    this.transport.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: this.id, reason } }).catch(() => undefined);
  }
}

function timedOut(call: ForwardedCall): void {
  call.timedOut();
}

const BACKOFF_MS = [500, 1_000, 2_000, 5_000, 10_000, 30_000];
const CONNECT_TIMEOUT_MS = 30_000;
const STABLE_MS = 30_000;

/**
 * One upstream MCP server, owned by the proxy: connected with the SDK `Client`, restarted with
 * backoff when it fails to start or dies, its tool and prompt lists cached. Failures stay here:
 * the other upstreams never see them.
 */
export class Upstream {
  state: UpstreamState = 'idle';
  client: Client | undefined;
  tools: Tool[] = [];
  prompts: Prompt[] = [];
  lastError: string | undefined;
  private attempt = 0;
  private readyAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private firstSettled!: () => void;
  /** Resolves once the first connection attempt succeeded or failed. */
  readonly settled: Promise<void> = new Promise((r) => (this.firstSettled = r));
  private capabilities: ClientCapabilities = {};
  private readonly progress = new Map<string, (params: Record<string, unknown>) => void>();
  private progressSeq = 0;
  /** Forwarded tools/call requests, by their (string) id on the upstream connection. */
  private readonly pending = new Map<string, PendingCall>();
  private callSeq = 0;
  private wire_: Transport | undefined;
  private logLevel: LoggingLevel | undefined;
  /** A burst of list_changed notifications costs at most two re-lists per kind, the last after the last notification. */
  private readonly relists = {
    tools: new Coalesced(() => this.relist('tools'), (err) => this.events.log(`upstream ${this.name}: tools/list failed: ${String(err)}`)),
    prompts: new Coalesced(() => this.relist('prompts'), (err) => this.events.log(`upstream ${this.name}: prompts/list failed: ${String(err)}`)),
  };
  /** Listings started, per kind: an answer to one overtaken by a later listing is dropped. */
  private readonly listSeq = { tools: 0, prompts: 0 };

  constructor(readonly config: ServerConfig, private readonly events: UpstreamEvents, private readonly transportFor: TransportFactory = defaultTransport) {}

  get name(): string {
    return this.config.name;
  }

  get serverCapabilities(): ServerCapabilities | undefined {
    return this.state === 'ready' ? this.client?.getServerCapabilities() : undefined;
  }

  /**
   * A progress token for one forwarded request. The SDK dispatches notifications a microtask
   * after responses, so a final progress arriving with the result would be dropped; reading it
   * off the transport keeps every update in order.
   */
  trackProgress(onProgress: (params: Record<string, unknown>) => void): string {
    const token = `kavach-${++this.progressSeq}`;
    this.progress.set(token, onProgress);
    return token;
  }

  untrackProgress(token: string): void {
    this.progress.delete(token);
  }

  /**
   * Forwards one tools/call as raw JSON-RPC on the upstream connection, beside the SDK client
   * (string ids never collide with its numeric ones). This skips the client's per-request
   * bookkeeping on the hot path; the result is still schema-checked.
   */
  callTool(params: Record<string, unknown>, opts: { signal: CallSignal; timeoutMs: number }): Promise<CallToolResult> {
    const transport = this.wire_;
    if (this.state !== 'ready' || !transport) return Promise.reject(new Error(`server '${this.name}' is unavailable`));
    if (opts.signal.aborted) return Promise.reject(new Error('the call was cancelled'));
    const id = `kavach-call-${++this.callSeq}`;
    const call = new ForwardedCall(id, this.name, this.pending, transport, opts.signal, opts.timeoutMs);
    try {
      transport.send({ jsonrpc: '2.0', id, method: 'tools/call', params }).catch(call.sendFailed);
    } catch (err) {
      // The line transports serialise before they return a promise: a message JSON.stringify cannot
      // take (nesting JSON.parse accepted) throws here. Left pending, the call would time out later
      // with nobody awaiting it, an unhandled rejection that ends the process.
      call.sendFailed(err);
    }
    return call.promise;
  }

  start(capabilities: ClientCapabilities): void {
    if (this.state !== 'idle') return;
    this.capabilities = capabilities;
    void this.connect();
  }

  async setLogLevel(level: LoggingLevel): Promise<void> {
    this.logLevel = level;
    if (this.state === 'ready' && this.client?.getServerCapabilities()?.logging) await this.client.setLoggingLevel(level);
  }

  async close(): Promise<void> {
    this.state = 'closed';
    this.wire_ = undefined;
    for (const call of [...this.pending.values()]) call.reject(new Error('the proxy is shutting down'));
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'starting';
    const client = new Client({ name: 'kavach-mcp-proxy', version: '0.1.0' }, { capabilities: this.capabilities });
    this.wire(client);
    const transport = this.transportFor(this.config);
    let closedEarly = false;
    client.onclose = () => {
      closedEarly = true;
      if (this.client === client) this.onDown('the connection closed');
    };
    client.onerror = (err) => this.events.log(`upstream ${this.name}: ${err.message}`);
    try {
      await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
      const deliver = transport.onmessage;
      transport.onmessage = (message, extra) => {
        if ('method' in message) {
          if (message.method === 'notifications/progress' && !('id' in message)) {
            const params = (message.params ?? {}) as Record<string, unknown>;
            const handler = this.progress.get(params.progressToken as string);
            if (handler) handler(params);
            return;
          }
        } else if ('id' in message && typeof message.id === 'string') {
          const call = this.pending.get(message.id);
          if (call) {
            if ('result' in message) call.resolve(message.result);
            else if ('error' in message) call.reject(new McpError(message.error.code, message.error.message, message.error.data));
            return;
          }
        }
        deliver?.(message, extra);
      };
      this.wire_ = transport;
      if (closedEarly || (this.state as UpstreamState) === 'closed') throw new Error('the connection closed during start-up');
      this.client = client;
      await this.refresh(client);
      this.state = 'ready';
      this.readyAt = Date.now();
      this.lastError = undefined;
      this.events.log(`upstream ${this.name}: ready (${this.tools.length} tools)`);
      // Right after 'ready', before any await: the proxy starts the pin check of the new tool
      // list now, and holds calls to this server's tools until it has a verdict.
      await this.events.changed(this, 'tools');
      await this.events.changed(this, 'prompts');
      await this.events.changed(this, 'resources');
      if (this.logLevel && client.getServerCapabilities()?.logging) await client.setLoggingLevel(this.logLevel).catch(() => undefined);
      this.firstSettled();
    } catch (err) {
      await client.close().catch(() => undefined);
      if (this.client === client) this.client = undefined;
      this.onDown(`failed to start: ${(err as Error).message}`);
    }
  }

  private onDown(reason: string): void {
    if (this.state === 'closed' || this.state === 'down') return;
    const wasReady = this.state === 'ready';
    // A server that dies soon after every start keeps backing off; one that ran a while starts afresh.
    if (wasReady && Date.now() - this.readyAt > STABLE_MS) this.attempt = 0;
    this.state = 'down';
    this.client = undefined;
    this.wire_ = undefined;
    this.lastError = reason;
    for (const call of [...this.pending.values()]) call.reject(new Error(`the server went away (${reason})`));
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] as number;
    this.attempt++;
    this.events.log(`upstream ${this.name}: ${reason}; restarting in ${delay} ms`);
    this.firstSettled();
    // Tools stay listed while down, so a call gets a clear "unavailable" instead of vanishing.
    if (wasReady) void this.events.changed(this, 'resources');
    this.timer = setTimeout(() => void this.connect(), delay);
    this.timer.unref();
  }

  private wire(client: Client): void {
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      if (this.client === client) this.relists.tools.trigger();
    });
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => {
      if (this.client === client) this.relists.prompts.trigger();
    });
    client.setNotificationHandler(ResourceListChangedNotificationSchema, async () => {
      await this.events.changed(this, 'resources');
    });
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => this.events.resourceUpdated(this, n.params));
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => this.events.logMessage(this, n.params));
    // Only what the downstream client declared: the upstream then asks nothing it cannot answer.
    const relay = (request: { method: string; params?: Record<string, unknown> }, extra: { signal: AbortSignal }) =>
      this.events.relay(request, extra.signal) as never;
    if (this.capabilities.sampling) client.setRequestHandler(CreateMessageRequestSchema, relay);
    if (this.capabilities.elicitation) client.setRequestHandler(ElicitRequestSchema, relay);
    if (this.capabilities.roots) client.setRequestHandler(ListRootsRequestSchema, relay);
  }

  private async relist(what: 'tools' | 'prompts'): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (what === 'tools') await this.refreshTools(client);
    else await this.refreshPrompts(client);
    // Not awaited: a slow pin check of this list must not hold back listing the next one (the
    // proxy drops a check a newer list overtook).
    if (this.client === client) void Promise.resolve(this.events.changed(this, what)).catch((err: unknown) => this.events.log(`upstream ${this.name}: ${String(err)}`));
  }

  private async refresh(client: Client): Promise<void> {
    await this.refreshTools(client);
    await this.refreshPrompts(client);
  }

  private async refreshTools(client: Client): Promise<void> {
    if (!client.getServerCapabilities()?.tools) {
      this.tools = [];
      return;
    }
    const seq = ++this.listSeq.tools;
    const tools = await listAllPages((cursor) => client.listTools(cursor === undefined ? {} : { cursor }).then((p) => ({ items: p.tools, nextCursor: p.nextCursor })), 10_000);
    // A listing started during start-up, or before a reconnect, must not overwrite a later one.
    if (seq !== this.listSeq.tools) return;
    this.tools = encodable(tools, (t) => this.events.log(`upstream ${this.name}: tool '${t.name.slice(0, 200)}' is nested too deep to pass on; hiding it`));
  }

  private async refreshPrompts(client: Client): Promise<void> {
    if (!client.getServerCapabilities()?.prompts) {
      this.prompts = [];
      return;
    }
    const seq = ++this.listSeq.prompts;
    const prompts = await listAllPages((cursor) => client.listPrompts(cursor === undefined ? {} : { cursor }).then((p) => ({ items: p.prompts, nextCursor: p.nextCursor })), 10_000);
    if (seq !== this.listSeq.prompts) return;
    this.prompts = encodable(prompts, (p) => this.events.log(`upstream ${this.name}: prompt '${p.name.slice(0, 200)}' is nested too deep to pass on; hiding it`));
  }
}

/**
 * Runs a task on demand, one run at a time: a trigger during a run queues one more run (however
 * many triggers come), which starts after the current one ends, so the last trigger is always
 * followed by a whole run. A failed run is reported and does not cancel the queued one.
 */
export class Coalesced {
  private running: Promise<void> | undefined;
  private queued = false;

  constructor(private readonly task: () => Promise<void>, private readonly onError: (err: unknown) => void) {}

  /** Resolves when no run is left that started before this trigger or was queued by it. */
  trigger(): Promise<void> {
    if (this.running) {
      this.queued = true;
      return this.running;
    }
    this.running = this.loop();
    return this.running;
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.queued = false;
        try {
          await this.task();
        } catch (err) {
          this.onError(err);
        }
      } while (this.queued);
    } finally {
      this.running = undefined;
    }
  }
}

/** Most pages one listing follows; past it, what was listed so far is the list. */
export const MAX_LIST_PAGES = 100;

/**
 * Follows a paginated listing to its end, bounded: a server whose cursor never ends (it repeats
 * one, or always hands out a new one with empty pages) would otherwise keep the proxy asking
 * forever, and every client waiting on the listing with it.
 */
export async function listAllPages<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>, maxItems: number): Promise<T[]> {
  const items: T[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let pages = 0; pages < MAX_LIST_PAGES; pages++) {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    cursor = page.nextCursor;
    if (cursor === undefined || seen.has(cursor) || items.length >= maxItems) break;
    seen.add(cursor);
  }
  return items;
}

/**
 * The entries of an upstream's list that can be passed on: JSON.parse takes nesting that
 * JSON.stringify cannot, and one such entry would fail the whole merged list for every client.
 */
export function encodable<T>(items: T[], onDropped: (item: T) => void): T[] {
  let out: T[] | undefined;
  for (let i = 0; i < items.length; i++) {
    try {
      JSON.stringify(items[i]);
    } catch {
      out ??= items.slice(0, i);
      onDropped(items[i] as T);
      continue;
    }
    out?.push(items[i] as T);
  }
  return out ?? items;
}

function defaultTransport(c: ServerConfig): Transport {
  if (c.kind === 'stdio') {
    // Windows needs the SDK's cross-spawn (.cmd shims, PATHEXT); elsewhere the lean transport.
    if (process.platform === 'win32') {
      const params: ConstructorParameters<typeof StdioClientTransport>[0] = { command: c.command, args: c.args, env: c.env, stderr: 'inherit' };
      if (c.cwd !== undefined) params.cwd = c.cwd;
      return new StdioClientTransport(params);
    }
    const params: ChildServerParams = { command: c.command, args: c.args, env: c.env, stderr: 'inherit' };
    if (c.cwd !== undefined) params.cwd = c.cwd;
    return new ChildProcessTransport(params);
  }
  return new StreamableHTTPClientTransport(new URL(c.url), { requestInit: { headers: c.headers } });
}

/**
 * The commonest result, text blocks only (`{ content: [{ type: 'text', text }], isError? }`),
 * checked by hand: a strict subset of what `CallToolResultSchema` accepts. Anything else, even
 * a text block with annotations, goes through the full schema.
 */
export function isPlainTextResult(result: unknown): boolean {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return false;
  const r = result as Record<string, unknown>;
  for (const k in r) if (k !== 'content' && k !== 'isError') return false;
  if (r.isError !== undefined && typeof r.isError !== 'boolean') return false;
  const content = r.content;
  if (!Array.isArray(content)) return false;
  for (const block of content as unknown[]) {
    if (block === null || typeof block !== 'object' || Array.isArray(block)) return false;
    const b = block as Record<string, unknown>;
    if (b.type !== 'text' || typeof b.text !== 'string') return false;
    for (const k in b) if (k !== 'type' && k !== 'text') return false;
  }
  return true;
}
