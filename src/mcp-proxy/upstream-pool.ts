import { ErrorCode, McpError, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { ServerConfig } from './config.ts';
import type { RestartPolicy } from './restart-backoff.ts';
import { Upstream, type TransportFactory, type UpstreamEvents } from './upstream.ts';

/** Upper bound on how long a first listing waits for upstreams still starting. */
export const STARTUP_WAIT_MS = 10_000;

/** The configured upstreams, started together once, and how a request reaches one of them. */
export class UpstreamPool {
  readonly upstreams: Upstream[];
  private started = false;
  private startup: Promise<void> = Promise.resolve();
  private startupOver = false;

  constructor(servers: readonly ServerConfig[], events: UpstreamEvents, transportFor?: TransportFactory, restartPolicy?: RestartPolicy) {
    this.upstreams = servers.map((s) => new Upstream(s, events, transportFor, restartPolicy));
  }

  /** Resolves once every upstream's first start succeeded or failed, or the startup wait ran out. */
  get ready(): Promise<void> {
    return this.startup;
  }

  /** Whether `ready` has resolved: a name not known by then is not known. */
  get startupDone(): boolean {
    return this.startupOver;
  }

  /** Starts every upstream once, asking them only for what the downstream client can answer. */
  start(clientCapabilities: ClientCapabilities | undefined): void {
    if (this.started) return;
    this.started = true;
    const caps: ClientCapabilities = {};
    if (clientCapabilities?.sampling) caps.sampling = clientCapabilities.sampling;
    if (clientCapabilities?.elicitation) caps.elicitation = clientCapabilities.elicitation;
    if (clientCapabilities?.roots) caps.roots = { listChanged: true };
    for (const u of this.upstreams) u.start(caps);
    let timer: NodeJS.Timeout | undefined;
    this.startup = Promise.race([
      Promise.all(this.upstreams.map((u) => u.settled)).then(() => undefined),
      new Promise<void>((r) => {
        timer = setTimeout(r, STARTUP_WAIT_MS);
        timer.unref();
      }),
    ]).finally(() => {
      clearTimeout(timer);
      this.startupOver = true;
    });
  }

  /** The SDK client of a ready upstream; a JSON-RPC error naming the server otherwise. */
  clientOf(u: Upstream): NonNullable<Upstream['client']> {
    if (u.state !== 'ready' || !u.client)
      throw new McpError(ErrorCode.InternalError, `server '${u.name}' is unavailable (${u.lastError ?? u.state})`);
    return u.client;
  }

  /** The ready upstreams that serve resources, in config order. */
  resourceServers(): Upstream[] {
    return this.upstreams.filter((u) => u.state === 'ready' && u.serverCapabilities?.resources);
  }

  async rootsChanged(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.client?.sendRootsListChanged().catch(() => undefined)));
  }

  async close(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.close()));
  }
}
