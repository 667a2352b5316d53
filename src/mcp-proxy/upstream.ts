import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type ClientCapabilities,
  type LoggingLevel,
  type LoggingMessageNotification,
  type Prompt,
  type ResourceUpdatedNotification,
  type ServerCapabilities,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { Coalesced } from './coalesced.ts';
import type { ServerConfig } from './config.ts';
import { ChildProcessTransport, type ChildExit, type ChildServerParams } from './line-transport.ts';
import { encodable, listAllPages } from './listing.ts';
import { ListingScreen } from './listing-scan.ts';
import { RestartBackoff, type RestartPolicy } from './restart-backoff.ts';
import { UpstreamCallPath, type CallSignal } from './upstream-call.ts';

export type UpstreamState = 'idle' | 'starting' | 'ready' | 'down' | 'closed';

/** Opens the connection to one upstream (the default: a child process or Streamable HTTP). */
export type TransportFactory = (config: ServerConfig) => Transport;

/** A server→client request the proxy relays to a downstream client. */
export type ClientRequestRelay = (
  upstream: Upstream,
  request: { method: string; params?: Record<string, unknown> },
  signal: AbortSignal,
) => Promise<Record<string, unknown>>;

/** What clients are told of an upstream's state (MCP logging): it went down, or came back. */
export type UpstreamStatus =
  /** Down, or a start failed; `everReady`: it ran at some point since the proxy started. */
  { state: 'down'; reason: string; retryInMs: number; everReady: boolean } | { state: 'ready'; tools: number };

export interface UpstreamEvents {
  log(message: string): void;
  /** It went down or a start failed (before `changed`), or it came up (after it). */
  status(upstream: Upstream, status: UpstreamStatus): void;
  /** Tools, prompts or resources of this upstream changed (or it came up or went down). */
  changed(upstream: Upstream, what: 'tools' | 'prompts' | 'resources'): Promise<void> | void;
  logMessage(upstream: Upstream, params: LoggingMessageNotification['params']): void;
  resourceUpdated(upstream: Upstream, params: ResourceUpdatedNotification['params']): void;
  relay: ClientRequestRelay;
}

const CONNECT_TIMEOUT_MS = 30_000;

/**
 * One upstream MCP server, owned by the proxy: connected with the SDK `Client`, restarted with
 * backoff when it fails to start or dies, its tool and prompt lists cached. Failures stay here:
 * the other upstreams never see them.
 */
export class Upstream {
  state: UpstreamState = 'idle';
  client: Client | undefined;
  /** The client of a start under way: closing the proxy then ends it (and its process) too. */
  private startingClient: Client | undefined;
  tools: Tool[] = [];
  prompts: Prompt[] = [];
  /** What the server's initialize result tells the model (scanned with each new tool definition). */
  instructions: string | undefined;
  lastError: string | undefined;
  /** It was ready at some point since the proxy started. */
  everReady = false;
  private readonly backoff: RestartBackoff;
  private timer: NodeJS.Timeout | undefined;
  private firstSettled!: () => void;
  /** Resolves once the first connection attempt succeeded or failed. */
  readonly settled: Promise<void> = new Promise((r) => (this.firstSettled = r));
  private capabilities: ClientCapabilities = {};
  /** tools/call and progress, beside the SDK client on the same connection. */
  private readonly calls: UpstreamCallPath;
  private logLevel: LoggingLevel | undefined;
  /** A burst of list_changed notifications costs at most two re-lists per kind, the last after the last notification. */
  private readonly relists = {
    tools: new Coalesced(
      () => this.relist('tools'),
      (err) => this.events.log(`upstream ${this.name}: tools/list failed: ${String(err)}`),
    ),
    prompts: new Coalesced(
      () => this.relist('prompts'),
      (err) => this.events.log(`upstream ${this.name}: prompts/list failed: ${String(err)}`),
    ),
  };
  /** Listings started, per kind: an answer to one overtaken by a later listing is dropped. */
  private readonly listSeq = { tools: 0, prompts: 0 };
  /** The scan of what its prompts say of themselves (listing-scan.ts). */
  private readonly listings: ListingScreen;

  constructor(
    readonly config: ServerConfig,
    private readonly events: UpstreamEvents,
    private readonly transportFor: TransportFactory = defaultTransport,
    restartPolicy?: RestartPolicy,
  ) {
    this.calls = new UpstreamCallPath(config.name, `[servers.${config.name}] max_message_bytes`);
    this.backoff = new RestartBackoff(restartPolicy);
    this.listings = new ListingScreen((message) => events.log(message));
  }

  get name(): string {
    return this.config.name;
  }

  get serverCapabilities(): ServerCapabilities | undefined {
    return this.state === 'ready' ? this.client?.getServerCapabilities() : undefined;
  }

  /** A progress token for one forwarded request (see `UpstreamCallPath.trackProgress`). */
  trackProgress(onProgress: (params: Record<string, unknown>) => void): string {
    return this.calls.trackProgress(onProgress);
  }

  untrackProgress(token: string): void {
    this.calls.untrackProgress(token);
  }

  /** Forwards one tools/call on the raw path (`upstream-call.ts`). */
  callTool(params: Record<string, unknown>, opts: { signal: CallSignal; timeoutMs: number }): Promise<CallToolResult> {
    if (this.state !== 'ready') return Promise.reject(new Error(`server '${this.name}' is unavailable`));
    return this.calls.callTool(params, opts);
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
    this.calls.detach('the proxy is shutting down');
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    // A server still starting would otherwise keep its process (and this one) alive until the
    // connect timeout (30 s): `kavach mcp check` printed at 10 s and exited at 30.
    const starting = this.startingClient;
    this.startingClient = undefined;
    await Promise.all([client?.close().catch(() => undefined), starting?.close().catch(() => undefined)]);
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
      if (this.client === client) this.onDown(`the connection closed${exitNote(transport)}`);
    };
    client.onerror = (err) => this.events.log(`upstream ${this.name}: ${err.message}`);
    this.startingClient = client;
    try {
      await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
      this.calls.attach(transport);
      if (closedEarly || (this.state as UpstreamState) === 'closed') throw new Error('the connection closed during start-up');
      this.client = client;
      this.instructions = client.getInstructions();
      await this.refresh(client);
      this.state = 'ready';
      this.everReady = true;
      this.calls.answered = 0;
      this.backoff.up();
      this.lastError = undefined;
      this.events.log(`upstream ${this.name}: ready (${this.tools.length} tools)`);
      // Right after 'ready', before any await: the proxy starts the pin check of the new tool
      // list now, and holds calls to this server's tools until it has a verdict.
      await this.events.changed(this, 'tools');
      await this.events.changed(this, 'prompts');
      await this.events.changed(this, 'resources');
      if (this.logLevel && client.getServerCapabilities()?.logging) await client.setLoggingLevel(this.logLevel).catch(() => undefined);
      if (this.state === 'ready') this.events.status(this, { state: 'ready', tools: this.tools.length });
      this.firstSettled();
    } catch (err) {
      await client.close().catch(() => undefined);
      if (this.client === client) this.client = undefined;
      this.onDown(`failed to start: ${startFailure(err, this.config, transport)}`);
    } finally {
      if (this.startingClient === client) this.startingClient = undefined;
    }
  }

  private onDown(why: string): void {
    if (this.state === 'closed' || this.state === 'down') return;
    // Told to every client and logged: a remote server's error page can be long, and its own text.
    const reason = boundedReason(why);
    const wasReady = this.state === 'ready';
    // A server that dies soon after every start keeps backing off; one that has shown itself
    // healthy (up a while, or answering calls) starts afresh (restart-backoff.ts).
    const delay = this.backoff.down(this.calls.answered);
    this.state = 'down';
    this.client = undefined;
    this.lastError = reason;
    this.calls.detach(`the server went away (${reason})`);
    this.events.log(`upstream ${this.name}: ${reason}; restarting in ${delay} ms`);
    // Before the first start settles: a listing then already has this server's pinned tools.
    this.events.status(this, { state: 'down', reason, retryInMs: delay, everReady: this.everReady });
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
      this.events.relay(this, request, extra.signal) as never;
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
    if (this.client === client)
      void Promise.resolve(this.events.changed(this, what)).catch((err: unknown) =>
        this.events.log(`upstream ${this.name}: ${String(err)}`),
      );
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
    const tools = await listAllPages(
      (cursor) => client.listTools(cursor === undefined ? {} : { cursor }).then((p) => ({ items: p.tools, nextCursor: p.nextCursor })),
      10_000,
    );
    // A listing started during start-up, or before a reconnect, must not overwrite a later one.
    if (seq !== this.listSeq.tools) return;
    this.tools = encodable(tools, (t) =>
      this.events.log(`upstream ${this.name}: tool '${t.name.slice(0, 200)}' is nested too deep to pass on; hiding it`),
    );
  }

  private async refreshPrompts(client: Client): Promise<void> {
    if (!client.getServerCapabilities()?.prompts) {
      this.prompts = [];
      return;
    }
    const seq = ++this.listSeq.prompts;
    const prompts = await listAllPages(
      (cursor) => client.listPrompts(cursor === undefined ? {} : { cursor }).then((p) => ({ items: p.prompts, nextCursor: p.nextCursor })),
      10_000,
    );
    if (seq !== this.listSeq.prompts) return;
    const passable = encodable(prompts, (p) =>
      this.events.log(`upstream ${this.name}: prompt '${p.name.slice(0, 200)}' is nested too deep to pass on; hiding it`),
    );
    this.prompts = this.listings.screen(this.name, 'prompt', passable, (p) => p.name);
  }
}

/** How a child process ended, as a note to a reason (empty when unknown). */
function exitNote(transport: Transport): string {
  const exit = transport instanceof ChildProcessTransport ? transport.exit : undefined;
  return exit ? ` (${describeExit(exit)})` : '';
}

function describeExit(exit: ChildExit): string {
  return exit.signal !== null ? `the process was killed by ${exit.signal}` : `the process exited with code ${exit.code}`;
}

/** The most of a down reason clients are told; a remote server's error text can be a whole page. */
export const DOWN_REASON_MAX = 500;

/** `text` on one line (control characters as spaces) and at most DOWN_REASON_MAX characters. */
export function boundedReason(text: string): string {
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
  return line.length <= DOWN_REASON_MAX ? line : `${line.slice(0, DOWN_REASON_MAX - 1)}…`;
}

/** Why a start failed, in words a user can act on (a missing command, a process that exited at once). */
function startFailure(err: unknown, config: ServerConfig, transport: Transport): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (config.kind === 'stdio') {
    // spawn says ENOENT for a missing working directory too.
    if (code === 'ENOENT')
      return config.cwd !== undefined && !existsSync(config.cwd)
        ? `its working directory '${config.cwd}' does not exist`
        : `command '${config.command}' not found`;
    if (code === 'EACCES') return `command '${config.command}' is not executable (permission denied)`;
    const exit = transport instanceof ChildProcessTransport ? transport.exit : undefined;
    if (exit) return `${describeExit(exit)} before it answered initialize`;
  }
  return (err as Error).message;
}

/** The default: a child process for a stdio server, Streamable HTTP for a URL. */
function defaultTransport(c: ServerConfig): Transport {
  if (c.kind === 'stdio') {
    // Windows needs the SDK's cross-spawn (.cmd shims, PATHEXT); elsewhere the lean transport.
    if (process.platform === 'win32') {
      const params: ConstructorParameters<typeof StdioClientTransport>[0] = {
        command: c.command,
        args: c.args,
        env: c.env,
        stderr: 'inherit',
      };
      if (c.cwd !== undefined) params.cwd = c.cwd;
      // The limit applies, but a message over it closes the connection there (the SDK's way).
      if (c.maxMessageBytes !== undefined) params.maxBufferSize = c.maxMessageBytes;
      return new StdioClientTransport(params);
    }
    const params: ChildServerParams = { command: c.command, args: c.args, env: c.env, stderr: 'inherit' };
    if (c.cwd !== undefined) params.cwd = c.cwd;
    if (c.maxMessageBytes !== undefined) params.maxLineBytes = c.maxMessageBytes;
    return new ChildProcessTransport(params);
  }
  return new StreamableHTTPClientTransport(new URL(c.url), { requestInit: { headers: c.headers } });
}
