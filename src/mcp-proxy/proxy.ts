import type {
  CallToolResult,
  ClientCapabilities,
  LoggingLevel,
  Prompt,
  Resource,
  ResourceTemplate,
  Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { Gate } from '../engine/gate.ts';
import { ApprovalChannels } from './approvals/approval-flow.ts';
import { ChangeNotices, type ListKind } from './change-notices.ts';
import { ClientRelay } from './client-relay.ts';
import { complete, type CompleteParams } from './completions.ts';
import type { PrincipalConfig, ProxyConfig } from './config.ts';
import { LogRelay } from './log-relay.ts';
import type { ToolPins } from './pinning.ts';
import { PromptCatalogue } from './prompts.ts';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import { ResourceRouter } from './resource-router.ts';
import { Subscriptions } from './subscriptions.ts';
import { ToolCalls, type OutcomeSink, type ToolCallExtra, type ToolCallParams } from './tool-calls.ts';
import { ToolCatalogue, type ToolDescription } from './tool-catalogue.ts';
import type { ProxyTelemetry } from './telemetry.ts';
import type { TransportFactory, Upstream } from './upstream.ts';
import type { RestartPolicy } from './restart-backoff.ts';
import { UpstreamNotices } from './upstream-notices.ts';
import { UpstreamPool } from './upstream-pool.ts';

export type { ProxySession } from './proxy-state.ts';
export type { OutcomeSink, ProxyRefusalRecord } from './tool-calls.ts';

export interface ProxyCoreOptions {
  config: ProxyConfig;
  gate: Gate;
  pins?: ToolPins;
  outcomes?: OutcomeSink;
  log: (message: string) => void;
  /** How upstreams are reached; tests connect in-process servers. */
  transportFor?: TransportFactory;
  /** How failed upstreams are restarted (`RESTART_POLICY` when absent); tests shorten the waits. */
  restartPolicy?: RestartPolicy;
  /** Spans and metrics per request (`[telemetry]`); absent, nothing is measured. */
  telemetry?: ProxyTelemetry;
}

/**
 * The proxy's shared state, as one façade over its parts: the upstreams, the tool catalogue and
 * its calls, prompts, resources and subscriptions, log levels, list-changed notices and the relay
 * of server→client requests. Sessions call into it; it never writes to stdout.
 */
export class ProxyCore implements ProxyShared {
  readonly sessions = new Set<ProxySession>();
  readonly pool: UpstreamPool;
  readonly config: ProxyConfig;
  readonly log: (message: string) => void;
  readonly telemetry: ProxyTelemetry | undefined;
  readonly outcomes: OutcomeSink | undefined;
  gate: Gate;
  /** How calls that need a person are asked and held (DESIGN §11). */
  readonly approvals: ApprovalChannels;
  private readonly tools: ToolCatalogue;
  private readonly calls: ToolCalls;
  private readonly prompts: PromptCatalogue;
  private readonly resources: ResourceRouter;
  private readonly subscriptions: Subscriptions;
  private readonly logs: LogRelay;
  private readonly outages: UpstreamNotices;
  private readonly notices: ChangeNotices;
  private readonly clients: ClientRelay;

  constructor(opts: ProxyCoreOptions) {
    this.config = opts.config;
    this.gate = opts.gate;
    this.log = opts.log;
    this.telemetry = opts.telemetry;
    this.outcomes = opts.outcomes;
    this.tools = new ToolCatalogue(this, opts.pins, () => this.notices.schedule('tools'));
    this.approvals = new ApprovalChannels(this);
    this.calls = new ToolCalls(this, this.tools, opts.outcomes, this.approvals);
    this.prompts = new PromptCatalogue(this);
    this.resources = new ResourceRouter(this);
    this.subscriptions = new Subscriptions(this, this.resources);
    this.logs = new LogRelay(this);
    this.outages = new UpstreamNotices(this.logs, () => this.sessions);
    this.notices = new ChangeNotices(this.sessions);
    this.clients = new ClientRelay(this);
    this.pool = new UpstreamPool(
      opts.config.servers,
      {
        log: this.log,
        status: (u, status) => {
          // A server down since the proxy started still shows the tools it had, refused with why.
          if (status.state === 'down' && !u.everReady && this.tools.showPinned(u)) this.notices.schedule('tools');
          this.outages.status(u, status);
        },
        changed: (u, what) => this.onUpstreamChanged(u, what).catch((err: unknown) => this.log(`upstream ${u.name}: ${String(err)}`)),
        logMessage: (u, params) => this.logs.relay(u, params),
        resourceUpdated: (_u, params) => this.subscriptions.updated(params),
        relay: (u, request, signal) => this.clients.relay(u, request, signal),
      },
      opts.transportFor,
      opts.restartPolicy,
    );
  }

  get upstreams(): readonly Upstream[] {
    return this.pool.upstreams;
  }

  /** Starts every upstream once, asking them only for what the downstream client can answer. */
  startUpstreams(clientCapabilities: ClientCapabilities | undefined): void {
    this.pool.start(clientCapabilities);
  }

  addSession(session: ProxySession): void {
    this.sessions.add(session);
    this.clients.sessionAdded(session);
  }

  removeSession(session: ProxySession): void {
    this.sessions.delete(session);
    this.clients.sessionClosed(session);
    this.logs.sessionClosed(session);
    this.subscriptions.sessionClosed(session);
  }

  async close(): Promise<void> {
    this.notices.close();
    await this.pool.close();
  }

  /** Every exposed tool with what a principal would see (for `kavach mcp check`). */
  describeTools(principal: PrincipalConfig): Promise<ToolDescription[]> {
    return this.tools.describe(principal);
  }

  /** `session`: the client listing, told then of servers that are down (so a short list is not silent). */
  async listTools(principal: PrincipalConfig, session?: ProxySession): Promise<Tool[]> {
    const tools = await this.tools.visibleTo(principal);
    if (session) this.outages.remind(session);
    return tools;
  }

  /** The hot path: resolve, gate, forward with the permit, record the outcome. */
  callTool(session: ProxySession, params: ToolCallParams, extra: ToolCallExtra): Promise<CallToolResult> {
    return this.calls.call(session, params, extra);
  }

  listPrompts(principal: PrincipalConfig): Promise<Prompt[]> {
    return this.prompts.list(principal);
  }

  getPrompt(
    session: ProxySession,
    params: { name: string; arguments?: Record<string, string>; _meta?: Record<string, unknown> },
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    return this.prompts.getPrompt(session, params, signal);
  }

  listResources(principal?: PrincipalConfig): Promise<Resource[]> {
    return this.resources.list(principal);
  }

  listResourceTemplates(principal?: PrincipalConfig): Promise<ResourceTemplate[]> {
    return this.resources.listTemplates(principal);
  }

  readResource(
    session: ProxySession,
    params: { uri: string; _meta?: Record<string, unknown> },
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    return this.resources.read(session, params, signal);
  }

  /** `caller` is the session as of this request (HTTP: its address), for the gate. */
  subscribe(session: ProxySession, uri: string, caller: ProxySession = session): Promise<void> {
    return this.subscriptions.subscribe(session, uri, caller);
  }

  unsubscribe(session: ProxySession, uri: string): Promise<void> {
    return this.subscriptions.unsubscribe(session, uri);
  }

  complete(params: CompleteParams, signal: AbortSignal): Promise<Record<string, unknown>> {
    return complete(this, this.prompts, this.resources, params, signal);
  }

  setLogLevel(session: ProxySession, level: LoggingLevel): Promise<void> {
    return this.logs.setLevel(session, level);
  }

  rootsChanged(): Promise<void> {
    return this.pool.rootsChanged();
  }

  /** After a policy reload or a pin approval: recompute what each principal sees. */
  async refreshVisibility(reloadPins = false): Promise<void> {
    // The policies first: a pin file that cannot be read (or is slow to) must not leave the lists
    // and subscriptions judged by the previous policy set.
    this.tools.forgetVisibility();
    this.subscriptions.dropRefused();
    try {
      if (reloadPins) await this.tools.reloadPins();
    } finally {
      this.notices.schedule('tools');
      if (this.config.gate.gateResources) {
        this.notices.schedule('prompts');
        this.notices.schedule('resources');
      }
    }
  }

  private async onUpstreamChanged(u: Upstream, what: ListKind): Promise<void> {
    if (what === 'tools') await this.tools.vet(u);
    else if (what === 'prompts') this.prompts.rebuild();
    this.notices.schedule(what);
  }
}
