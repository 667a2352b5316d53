import { randomUUID } from 'node:crypto';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import {
  CompleteResultSchema, CreateMessageResultSchema, ElicitResultSchema, ErrorCode, GetPromptResultSchema,
  ListRootsResultSchema, LoggingLevelSchema, McpError, ReadResourceResultSchema,
  type CallToolResult, type ClientCapabilities, type LoggingLevel, type LoggingMessageNotification, type Prompt, type Resource, type ResourceTemplate, type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { ActionContext } from '../engine/context.ts';
import type { Gate } from '../engine/gate.ts';
import { formatRefusal } from '../engine/refusal.ts';
import type { PermitVerdict, RefuseVerdict, Verdict } from '../engine/verdict.ts';
import type { PrincipalConfig, ProxyConfig } from './config.ts';
import type { ToolPins } from './pinning.ts';
import { exposeNames, type UpstreamName } from './tool-names.ts';
import { PERMIT_META } from './require-permit.ts';
import { encodable, listAllPages, Upstream, type CallSignal, type ClientRequestRelay, type TransportFactory } from './upstream.ts';
import { couldBePermitted } from './visibility.ts';

const KAVACH_META_PREFIX = 'dev.kavach/';
export const PERMIT_META_KEY = PERMIT_META;
export const VERDICT_META_KEY = 'dev.kavach/verdict';
export const OBSERVED_META_KEY = 'dev.kavach/observed';

/** Refusals the proxy gives itself, before the gate is asked. */
export type ProxyRefuseCode = 'TOOL_CHANGED' | 'UPSTREAM_UNAVAILABLE';
export type ProxyRefusal = Omit<RefuseVerdict, 'code'> & { code: ProxyRefuseCode };

/** What the proxy appends to the audit log after a forwarded call. */
export interface OutcomeRecord {
  type: 'outcome';
  time: number;
  evaluationId: string;
  action: string;
  outcome: 'ok' | 'tool_error' | 'upstream_failure';
  durationMs: number;
}

/** A refusal the proxy gave itself (the gate was not asked), for the audit log. */
export interface ProxyRefusalRecord {
  type: 'kavach.mcp_refusal';
  time: number;
  evaluationId: string;
  principal: string;
  session: string;
  action: string;
  code: ProxyRefuseCode;
  reason: string;
}

export interface OutcomeSink {
  append(record: OutcomeRecord | ProxyRefusalRecord): Promise<unknown>;
}

interface ExposedTool {
  exposed: string;
  upstream: Upstream;
  tool: Tool;
  action: string;
  changed: boolean;
}

interface ExposedPrompt {
  upstream: Upstream;
  prompt: Prompt;
}

/** A downstream client connection (stdio: the one; HTTP: one per MCP session). */
export interface ProxySession {
  id: string;
  principal: PrincipalConfig;
  server: Server;
  /** HTTP: the client's address (for `ip_in` and drift): where the session opened, or, per request, where that request came from. */
  ip?: string;
}

export interface ProxyCoreOptions {
  config: ProxyConfig;
  gate: Gate;
  pins?: ToolPins;
  outcomes?: OutcomeSink;
  log: (message: string) => void;
  /** How upstreams are reached; tests connect in-process servers. */
  transportFor?: TransportFactory;
}

/** Gated reads of URIs no server listed re-list the resource servers at most this often. */
const OWNER_RELIST_MS = 2_000;

/** Log levels from the most verbose (`debug`) to the least. */
const LOG_SEVERITY = new Map<LoggingLevel, number>(LoggingLevelSchema.options.map((level, i) => [level, i]));

/** Upper bound on how long a first listing waits for upstreams still starting. */
const STARTUP_WAIT_MS = 10_000;

/**
 * The proxy's shared state: the upstreams, the name maps, the gate. Sessions call into it; it
 * never writes to stdout.
 */
export class ProxyCore {
  readonly upstreams: Upstream[];
  readonly sessions = new Set<ProxySession>();
  private tools = new Map<string, ExposedTool>();
  private prompts = new Map<string, ExposedPrompt>();
  private resourceOwners = new Map<string, Upstream>();
  /** Downstream sessions subscribed to each resource URI (the upstream holds one subscription). */
  private subscribers = new Map<string, Set<ProxySession>>();
  /** With `gate_resources`: the upstream each subscribed URI was judged as belonging to, and subscribed on. */
  private subscriptionOwners = new Map<string, Upstream>();
  private templateOwners = new Map<string, Upstream>();
  private ownerRelisting: Promise<void> | undefined;
  private ownerRelistedAt = -Infinity;
  /** Per upstream: the tool list the pin check last classified, and the actions it held back. */
  private vetted = new Map<Upstream, { tools: Tool[]; changed: ReadonlySet<string> }>();
  private vetSeq = new Map<Upstream, number>();
  /** Pin checks under way, per upstream: its tools are not served until the verdict is in. */
  private vetting = new Map<Upstream, Promise<void>>();
  private visibleCache = new Map<string, Tool[]>();
  private started = false;
  private ready: Promise<void> = Promise.resolve();
  private readyDone = false;
  gate: Gate;
  private readonly config: ProxyConfig;
  private readonly pins: ToolPins | undefined;
  private readonly outcomes: OutcomeSink | undefined;
  private readonly log: (message: string) => void;
  private readonly notify = { tools: false, prompts: false, resources: false };
  private notifyTimer: NodeJS.Timeout | undefined;
  private lastSession: ProxySession | undefined;
  /** The level each session asked for with `logging/setLevel`; upstreams get the most verbose one. */
  private logLevels = new Map<ProxySession, LoggingLevel>();
  private upstreamLogLevel: LoggingLevel | undefined;

  constructor(opts: ProxyCoreOptions) {
    this.config = opts.config;
    this.gate = opts.gate;
    this.pins = opts.pins;
    this.outcomes = opts.outcomes;
    this.log = opts.log;
    const relay: ClientRequestRelay = (request, signal) => this.relayToClient(request, signal);
    this.upstreams = opts.config.servers.map((s) => new Upstream(s, {
      log: this.log,
      changed: (u, what) => this.onUpstreamChanged(u, what).catch((err: unknown) => this.log(`upstream ${u.name}: ${String(err)}`)),
      logMessage: (u, params) => this.relayLog(u, params),
      resourceUpdated: (_u, params) => {
        for (const s of this.subscribers.get(params.uri) ?? []) void s.server.sendResourceUpdated(params).catch(() => undefined);
      },
      relay,
    }, opts.transportFor));
  }

  /** Starts every upstream once, asking them only for what the downstream client can answer. */
  startUpstreams(clientCapabilities: ClientCapabilities | undefined): void {
    if (this.started) return;
    this.started = true;
    const caps: ClientCapabilities = {};
    if (clientCapabilities?.sampling) caps.sampling = clientCapabilities.sampling;
    if (clientCapabilities?.elicitation) caps.elicitation = clientCapabilities.elicitation;
    if (clientCapabilities?.roots) caps.roots = { listChanged: true };
    for (const u of this.upstreams) u.start(caps);
    let timer: NodeJS.Timeout | undefined;
    this.ready = Promise.race([
      Promise.all(this.upstreams.map((u) => u.settled)).then(() => undefined),
      new Promise<void>((r) => {
        timer = setTimeout(r, STARTUP_WAIT_MS);
        timer.unref();
      }),
    ]).finally(() => {
      clearTimeout(timer);
      this.readyDone = true;
    });
  }

  addSession(session: ProxySession): void {
    this.sessions.add(session);
    this.lastSession = session;
  }

  removeSession(session: ProxySession): void {
    this.sessions.delete(session);
    if (this.lastSession === session) this.lastSession = [...this.sessions].at(-1);
    if (this.logLevels.delete(session)) void this.applyLogLevel();
    for (const uri of [...this.subscribers.keys()]) void this.subscribe(session, 'resources/unsubscribe', uri).catch(() => undefined);
  }

  async close(): Promise<void> {
    clearTimeout(this.notifyTimer);
    await Promise.all(this.upstreams.map((u) => u.close()));
  }

  /** Every exposed tool with what a principal would see (for `kavach mcp check`). */
  async describeTools(principal: PrincipalConfig): Promise<{ exposed: string; action: string; server: string; listed: boolean; changed: boolean }[]> {
    await this.ready;
    const policies = this.gate.policies;
    const showAll = this.config.tools.showAll || this.config.gate.observeOnly;
    return [...this.tools.values()].map((t) => ({
      exposed: t.exposed,
      action: t.action,
      server: t.upstream.name,
      changed: t.changed,
      listed: !t.changed && (showAll || couldBePermitted(policies, principal, t.action)),
    }));
  }

  // ---- tools ------------------------------------------------------------------------------

  async listTools(principal: PrincipalConfig): Promise<Tool[]> {
    await this.ready;
    if (this.vetting.size > 0) await Promise.all(this.vetting.values());
    const key = `${principal.principalKind}\0${principal.principalId}\0${principal.roles.join('\0')}`;
    let visible = this.visibleCache.get(key);
    if (visible) return visible;
    const policies = this.gate.policies;
    const showAll = this.config.tools.showAll || this.config.gate.observeOnly;
    visible = [];
    for (const t of this.tools.values()) {
      if (t.changed) continue;
      if (!showAll && !couldBePermitted(policies, principal, t.action)) continue;
      visible.push({ ...t.tool, name: t.exposed });
    }
    if (this.visibleCache.size > 1000) this.visibleCache.clear();
    this.visibleCache.set(key, visible);
    return visible;
  }

  /** The hot path: resolve, gate, forward with the permit, record the outcome. */
  async callTool(
    session: ProxySession,
    params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> },
    extra: { requestId: string | number; signal: CallSignal; sendNotification: (n: never) => Promise<void> },
  ): Promise<CallToolResult> {
    let entry = this.tools.get(params.name);
    if (!entry && !this.readyDone) {
      // Its server may still be starting.
      await this.ready;
      entry = this.tools.get(params.name);
    }
    // A server that just (re)started with new definitions: wait for the pin check's verdict, so
    // a rug-pulled tool is never called under the definition that was approved before.
    const vetting = entry && this.vetting.get(entry.upstream);
    if (vetting) {
      await vetting;
      entry = this.tools.get(params.name);
    }
    if (!entry) return { isError: true, content: [{ type: 'text', text: `Unknown tool: ${params.name}` }] };
    if (entry.changed) return this.toolChanged(session, entry.action);
    const upstream = entry.upstream;
    if (upstream.state !== 'ready') {
      return this.recorded(session, entry.action, proxyRefusal('UPSTREAM_UNAVAILABLE', 'upstream', `server '${upstream.name}' is unavailable (${upstream.lastError ?? upstream.state}); it is being restarted, try again shortly`, false));
    }
    const args = params.arguments ?? {};
    const principal = session.principal;
    const ctx: ActionContext = {
      principalId: principal.principalId,
      principalKind: principal.principalKind,
      roles: principal.roles,
      actionName: entry.action,
      params: args,
      sessionId: session.id,
      audience: upstream.name,
      // No callId: the proxy evaluates each request once, and a client that reused a JSON-RPC id
      // would otherwise have identical calls charged once and executed many times.
    };
    if (session.ip !== undefined) ctx.ip = session.ip;
    const verdict = await this.gate.evaluate(ctx);
    if (verdict.kind !== 'permit') return refusalResult(verdict);
    // The definition may have changed (and the tool been held back) while the gate was deciding.
    if (this.tools.get(params.name)?.changed) return this.toolChanged(session, entry.action);

    const meta: Record<string, unknown> = {};
    let progressToken: unknown;
    let progressSent: Promise<void> | undefined;
    if (params._meta) {
      // A client-supplied permit must never reach the server.
      const clientMeta = withoutKavachMeta(params._meta);
      for (const k in clientMeta) {
        if (k === 'progressToken') progressToken = clientMeta[k];
        else meta[k] = clientMeta[k];
      }
    }
    if (verdict.permit !== undefined) meta[PERMIT_META_KEY] = verdict.permit;
    let upstreamToken: string | undefined;
    if (progressToken !== undefined) {
      // The upstream gets its own token; its progress is re-tagged with the client's.
      upstreamToken = upstream.trackProgress((p) => {
        // After a cancellation the client has forgotten the token; late progress would confuse it.
        if (extra.signal.aborted) return;
        progressSent = extra.sendNotification({ method: 'notifications/progress', params: { ...p, progressToken } } as never).catch(() => undefined);
      });
      meta.progressToken = upstreamToken;
    }
    const forwarded: Record<string, unknown> = { name: entry.tool.name, arguments: args };
    for (const _ in meta) {
      forwarded._meta = meta;
      break;
    }
    const started = performance.now();
    let result: CallToolResult;
    let outcome: OutcomeRecord['outcome'];
    let rethrow: unknown;
    try {
      result = await upstream.callTool(forwarded, { signal: extra.signal, timeoutMs: this.config.tools.callTimeoutMs });
      outcome = result.isError ? 'tool_error' : 'ok';
      // The client drops progress that arrives after the result: let the last one go first.
      if (progressSent) {
        await progressSent;
        await new Promise(setImmediate);
      }
    } catch (err) {
      outcome = 'upstream_failure';
      // Bad arguments stay a protocol error, as if the client had called the server itself.
      if (err instanceof McpError && err.code === ErrorCode.InvalidParams) rethrow = scrubbed(err);
      const message = extra.signal.aborted ? 'the call was cancelled' : (err as Error).message;
      result = { isError: true, content: [{ type: 'text', text: `Server '${upstream.name}' failed to answer: ${message}` }] };
    } finally {
      if (upstreamToken !== undefined) upstream.untrackProgress(upstreamToken);
    }
    if (this.outcomes) {
      const record: OutcomeRecord = { type: 'outcome', time: Date.now(), evaluationId: verdict.evaluationId, action: entry.action, outcome, durationMs: performance.now() - started };
      this.outcomes.append(record).catch((err: unknown) => this.log(`audit: could not record the outcome of ${verdict.evaluationId}: ${String(err)}`));
    }
    if (rethrow !== undefined) throw rethrow;
    // An upstream must not be able to show the client a verdict Kavach did not give.
    if (result._meta) result._meta = withoutKavachMeta(result._meta);
    if (verdict.observed && verdict.observed.kind !== 'permit') {
      result._meta = { ...result._meta, [OBSERVED_META_KEY]: verdict.observed };
    }
    return result;
  }

  private toolChanged(session: ProxySession, action: string): CallToolResult {
    return this.recorded(session, action, proxyRefusal('TOOL_CHANGED', 'pinning', `the definition of '${action}' changed since it was approved; an operator must run \`kavach mcp approve-tools\``));
  }

  private recorded(session: ProxySession, action: string, result: CallToolResult): CallToolResult {
    const verdict = result._meta?.[VERDICT_META_KEY] as ProxyRefusal;
    if (this.outcomes) {
      const record: ProxyRefusalRecord = {
        type: 'kavach.mcp_refusal', time: Date.now(), evaluationId: verdict.evaluationId, principal: session.principal.principalId,
        session: session.id, action, code: verdict.code, reason: verdict.reason,
      };
      this.outcomes.append(record).catch((err: unknown) => this.log(`audit: could not record a refusal: ${String(err)}`));
    }
    return result;
  }

  // ---- prompts, resources, completions, logging --------------------------------------------

  /** With `gate_resources`, only the prompts the principal could be permitted to get. */
  async listPrompts(principal: PrincipalConfig): Promise<Prompt[]> {
    await this.ready;
    const filter = this.listFilter(principal);
    const out: Prompt[] = [];
    for (const [name, p] of this.prompts) {
      if (filter && !filter(`${p.upstream.name}.prompts/get`, p.prompt.name)) continue;
      out.push({ ...p.prompt, name });
    }
    return out;
  }

  async getPrompt(session: ProxySession, params: { name: string; arguments?: Record<string, string>; _meta?: Record<string, unknown> }, signal: AbortSignal): Promise<Record<string, unknown>> {
    await this.ready;
    const entry = this.prompts.get(params.name);
    if (!entry) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${params.name}`);
    let verdict: PermitVerdict | undefined;
    if (this.config.gate.gateResources) verdict = await this.gateRequest(session, entry.upstream, 'prompts/get', entry.prompt.name, { ...params.arguments });
    const client = this.clientOf(entry.upstream);
    const forwarded = withForwardedMeta({ ...params, name: entry.prompt.name }, verdict);
    return stamped(await fromUpstream(client.request({ method: 'prompts/get', params: forwarded }, GetPromptResultSchema, { signal })), verdict);
  }

  /** With `gate_resources`, only the resources the principal could be permitted to read. */
  async listResources(principal?: PrincipalConfig): Promise<Resource[]> {
    await this.ready;
    const servers = this.resourceUpstreams();
    // Asked together, merged in config order: which server owns a URI that two of them list must
    // not depend on which answered first (a hostile server would answer fast to take the reads).
    const lists = await Promise.all(servers.map(async (u) => {
      const client = u.client;
      if (!client) return [];
      try {
        const resources = await listAllPages((cursor) => client.listResources(cursor === undefined ? {} : { cursor }).then((p) => ({ items: p.resources, nextCursor: p.nextCursor })), 50_000);
        return encodable(resources, (r) => this.log(`upstream ${u.name}: resource '${r.uri.slice(0, 200)}' is nested too deep to pass on; hiding it`));
      } catch (err) {
        this.log(`upstream ${u.name}: resources/list failed: ${(err as Error).message}`);
        return [];
      }
    }));
    const all: Resource[] = [];
    const owners = new Map<string, Upstream>();
    servers.forEach((u, i) => {
      for (const r of lists[i] ?? []) {
        if (!owners.has(r.uri)) owners.set(r.uri, u);
        all.push(r);
      }
    });
    this.resourceOwners = owners;
    const filter = principal && this.listFilter(principal);
    if (!filter) return all;
    // A URI listed twice is read from its first owner, so that owner's action decides.
    return all.filter((r) => filter(`${(owners.get(r.uri) as Upstream).name}.resources/read`, r.uri));
  }

  async listResourceTemplates(principal?: PrincipalConfig): Promise<ResourceTemplate[]> {
    await this.ready;
    const servers = this.resourceUpstreams();
    const lists = await Promise.all(servers.map(async (u) => {
      try {
        const templates = (await u.client?.listResourceTemplates())?.resourceTemplates ?? [];
        return encodable(templates, (t) => this.log(`upstream ${u.name}: resource template '${t.uriTemplate.slice(0, 200)}' is nested too deep to pass on; hiding it`));
      } catch (err) {
        this.log(`upstream ${u.name}: resources/templates/list failed: ${(err as Error).message}`);
        return [];
      }
    }));
    // In config order, like resources: a template two servers list belongs to the first.
    const all: { t: ResourceTemplate; u: Upstream }[] = [];
    const owners = new Map<string, Upstream>();
    servers.forEach((u, i) => {
      for (const t of lists[i] ?? []) {
        if (!owners.has(t.uriTemplate)) owners.set(t.uriTemplate, u);
        all.push({ t, u });
      }
    });
    this.templateOwners = owners;
    const filter = principal && this.listFilter(principal);
    // A template is not a URI: its `resource` conditions are assumed satisfiable.
    return all.filter(({ u }) => !filter || filter(`${u.name}.resources/read`)).map(({ t }) => t);
  }

  /** Routes by URI: the upstream that listed it, else each resource server in turn. */
  async readResource(session: ProxySession, params: { uri: string; _meta?: Record<string, unknown> }, signal: AbortSignal): Promise<Record<string, unknown>> {
    await this.ready;
    if (!this.config.gate.gateResources) {
      const forwarded = withForwardedMeta(params, undefined);
      return stamped(await fromUpstream(this.byUri(params.uri, (client) => client.request({ method: 'resources/read', params: forwarded }, ReadResourceResultSchema, { signal }))), undefined);
    }
    // Gated: the read goes to one known owner only, after the gate said yes for that owner.
    const owner = await this.ownerOf(params.uri);
    const verdict = await this.gateRequest(session, owner, 'resources/read', params.uri, { uri: params.uri });
    const forwarded = withForwardedMeta(params, verdict);
    return stamped(await fromUpstream(this.clientOf(owner).request({ method: 'resources/read', params: forwarded }, ReadResourceResultSchema, { signal })), verdict);
  }

  /**
   * The one upstream a URI belongs to, for the gate: listed, else matched by exactly one server's
   * templates, else the only resource server. Anything else is refused rather than tried in turn
   * (trying would read from servers the gate never judged).
   */
  private async ownerOf(uri: string): Promise<Upstream> {
    let owner = this.resourceOwners.get(uri);
    if (owner) return owner;
    await this.relistOwners();
    owner = this.resourceOwners.get(uri);
    if (owner) return owner;
    const matching = new Set<Upstream>();
    for (const [template, u] of this.templateOwners) {
      try {
        if (new UriTemplate(template).match(uri)) matching.add(u);
      } catch {
        // A malformed template owns nothing.
      }
    }
    const servers = this.resourceUpstreams();
    const only = matching.size === 1 ? [...matching][0] : matching.size === 0 && servers.length === 1 ? servers[0] : undefined;
    if (only) return only;
    throw new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri} (${matching.size > 1 ? 'several servers' : 'no server'} claim it, so it cannot be gated)`);
  }

  /**
   * Re-lists resources and templates for `ownerOf`: one listing at a time, at most once per
   * OWNER_RELIST_MS. Otherwise each read of an unlisted URI (cheap for a client) would cost a full
   * listing of every resource server. Meanwhile the last listing decides, as it would anyway.
   */
  private relistOwners(): Promise<void> {
    if (this.ownerRelisting) return this.ownerRelisting;
    if (performance.now() - this.ownerRelistedAt < OWNER_RELIST_MS) return Promise.resolve();
    this.ownerRelisting = Promise.all([this.listResources(), this.listResourceTemplates()]).then(() => undefined).finally(() => {
      this.ownerRelistedAt = performance.now();
      this.ownerRelisting = undefined;
    });
    return this.ownerRelisting;
  }

  /** `[gate] gate_resources`: the session's principal asks the gate; a refusal is a JSON-RPC error. */
  private async gateRequest(session: ProxySession, upstream: Upstream, method: 'resources/read' | 'resources/subscribe' | 'prompts/get', resource: string, params: Record<string, unknown>): Promise<PermitVerdict> {
    const principal = session.principal;
    const ctx: ActionContext = {
      principalId: principal.principalId,
      principalKind: principal.principalKind,
      roles: principal.roles,
      actionName: `${upstream.name}.${method}`,
      resource,
      params,
      sessionId: session.id,
      audience: upstream.name,
    };
    if (session.ip !== undefined) ctx.ip = session.ip;
    const verdict = await this.gate.evaluate(ctx);
    if (verdict.kind !== 'permit') throw refusalError(verdict);
    return verdict;
  }

  /** Undefined when lists are not filtered; else whether an action (on a resource) could be permitted. */
  private listFilter(principal: PrincipalConfig): ((action: string, resource?: string) => boolean) | undefined {
    if (!this.config.gate.gateResources || this.config.tools.showAll || this.config.gate.observeOnly) return undefined;
    const policies = this.gate.policies;
    return (action, resource) => couldBePermitted(policies, principal, action, resource);
  }

  /**
   * The upstream is subscribed while at least one session is; updates go to those sessions only.
   * `caller` is the session as of this request (HTTP: its address), for the gate.
   */
  async subscribe(session: ProxySession, method: 'resources/subscribe' | 'resources/unsubscribe', uri: string, caller: ProxySession = session): Promise<void> {
    if (method === 'resources/subscribe') {
      const policies = this.gate.policies;
      let owner: Upstream | undefined;
      if (this.config.gate.gateResources) {
        owner = await this.ownerOf(uri);
        await this.gateRequest(caller, owner, 'resources/subscribe', uri, { uri });
      }
      // Joined at once, before the upstream answers, so that a concurrent subscribe or unsubscribe
      // of the same URI sees this session (and neither drops it nor unsubscribes the upstream).
      const first = !this.subscribers.get(uri)?.size;
      const sessions = this.subscribers.get(uri) ?? new Set<ProxySession>();
      sessions.add(session);
      this.subscribers.set(uri, sessions);
      if (first) {
        if (owner) this.subscriptionOwners.set(uri, owner);
        try {
          await fromUpstream(owner ? this.clientOf(owner).subscribeResource({ uri }) : this.byUri(uri, (client) => client.subscribeResource({ uri })));
        } catch (err) {
          if (sessions.delete(session) && sessions.size === 0 && this.subscribers.get(uri) === sessions) {
            this.subscribers.delete(uri);
            this.subscriptionOwners.delete(uri);
          }
          throw err;
        }
        // Every session left while the upstream was subscribing (a reload dropped them, they
        // unsubscribed, they went away): their unsubscribe may have reached it before this.
        if (!this.subscribers.get(uri)?.size) await this.unsubscribeUpstream(uri, owner).catch(() => undefined);
      }
      // A reload while this request was in flight did not see this subscription.
      if (owner && this.gate.policies !== policies && !this.config.gate.observeOnly && !couldBePermitted(this.gate.policies, caller.principal, `${owner.name}.resources/subscribe`, uri)) {
        await this.subscribe(session, 'resources/unsubscribe', uri);
        throw new McpError(ErrorCode.InvalidRequest, `the policies were reloaded while subscribing to ${uri.slice(0, 200)}, and refuse it now`);
      }
      return;
    }
    const sessions = this.subscribers.get(uri);
    if (!sessions?.delete(session) || sessions.size > 0) return;
    this.subscribers.delete(uri);
    const owner = this.subscriptionOwners.get(uri);
    this.subscriptionOwners.delete(uri);
    await this.unsubscribeUpstream(uri, owner);
  }

  private async unsubscribeUpstream(uri: string, owner: Upstream | undefined): Promise<unknown> {
    return fromUpstream(owner ? this.clientOf(owner).unsubscribeResource({ uri }) : this.byUri(uri, (client) => client.unsubscribeResource({ uri })));
  }

  /**
   * After a policy reload: a gated subscription the new policies could never permit (on who is
   * asking, the action and the URI) is dropped, and the upstream unsubscribed once no session holds
   * it. Conditions on time, rate or address were judged when the client subscribed; a reload does
   * not evaluate them again (that would charge limits and write verdicts for requests nobody made).
   */
  private dropRefusedSubscriptions(): void {
    if (!this.config.gate.gateResources || this.config.gate.observeOnly) return;
    const policies = this.gate.policies;
    for (const [uri, sessions] of this.subscribers) {
      const owner = this.subscriptionOwners.get(uri);
      if (!owner) continue;
      for (const s of [...sessions]) {
        if (couldBePermitted(policies, s.principal, `${owner.name}.resources/subscribe`, uri)) continue;
        this.log(`policy reload: ${s.principal.principalId} may no longer subscribe to ${uri.slice(0, 200)}; its subscription is dropped`);
        this.subscribe(s, 'resources/unsubscribe', uri).catch((err: unknown) => this.log(`upstream ${owner.name}: resources/unsubscribe failed: ${String(err)}`));
      }
    }
  }

  async complete(params: { ref: { type: string; name?: string; uri?: string }; [k: string]: unknown }, signal: AbortSignal): Promise<Record<string, unknown>> {
    await this.ready;
    const ref = params.ref;
    if (ref.type === 'ref/prompt') {
      const entry = this.prompts.get(ref.name ?? '');
      if (!entry) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${ref.name}`);
      return fromUpstream(this.clientOf(entry.upstream).request({ method: 'completion/complete', params: { ...params, ref: { ...ref, name: entry.prompt.name } } }, CompleteResultSchema, { signal }));
    }
    const owner = this.templateOwners.get(ref.uri ?? '') ?? this.resourceOwners.get(ref.uri ?? '');
    if (!owner) return { completion: { values: [], hasMore: false } };
    return fromUpstream(this.clientOf(owner).request({ method: 'completion/complete', params }, CompleteResultSchema, { signal }));
  }

  /**
   * An upstream log line cannot be traced to the call that caused it and may carry one client's
   * data: with clients of several principals connected (HTTP mode) it stays on stderr.
   */
  private relayLog(u: Upstream, params: LoggingMessageNotification['params']): void {
    const principals = new Set([...this.sessions].map((s) => s.principal.principalId));
    if (principals.size > 1) {
      this.log(`upstream ${u.name} [${params.level}]${params.logger ? ` ${params.logger}` : ''}: ${JSON.stringify(params.data)?.slice(0, 1000)}`);
      return;
    }
    const message = { ...params, logger: params.logger ? `${u.name}/${params.logger}` : u.name };
    const severity = LOG_SEVERITY.get(params.level) ?? 0;
    for (const s of this.sessions) {
      const wanted = this.logLevels.get(s);
      if (wanted !== undefined && severity < (LOG_SEVERITY.get(wanted) ?? 0)) continue;
      void s.server.sendLoggingMessage(message).catch(() => undefined);
    }
  }

  /**
   * One session's `logging/setLevel`. Upstreams are shared, so they log at the most verbose level
   * any connected session asked for; each session is sent only what is at or above its own level.
   */
  async setLogLevel(session: ProxySession, level: LoggingLevel): Promise<void> {
    this.logLevels.set(session, level);
    await this.applyLogLevel();
  }

  private async applyLogLevel(): Promise<void> {
    let level: LoggingLevel | undefined;
    for (const l of this.logLevels.values()) if (level === undefined || (LOG_SEVERITY.get(l) ?? 0) < (LOG_SEVERITY.get(level) ?? 0)) level = l;
    // With no session asking any more, upstreams keep the last level (the protocol has no reset).
    if (level === undefined || level === this.upstreamLogLevel) return;
    this.upstreamLogLevel = level;
    await Promise.all(this.upstreams.map((u) => u.setLogLevel(level).catch(() => undefined)));
  }

  async rootsChanged(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.client?.sendRootsListChanged().catch(() => undefined)));
  }

  // ---- policy and pins --------------------------------------------------------------------

  /** After a policy reload or a pin approval: recompute what each principal sees. */
  async refreshVisibility(reloadPins = false): Promise<void> {
    // The policies first: a pin file that cannot be read (or is slow to) must not leave the lists
    // and subscriptions judged by the previous policy set.
    this.visibleCache.clear();
    this.dropRefusedSubscriptions();
    try {
      if (reloadPins && this.pins) {
        await this.pins.load();
        await Promise.all(this.upstreams.map((u) => this.vet(u)));
      }
    } finally {
      this.schedule('tools');
      if (this.config.gate.gateResources) {
        this.schedule('prompts');
        this.schedule('resources');
      }
    }
  }

  // -----------------------------------------------------------------------------------------

  private resourceUpstreams(): Upstream[] {
    return this.upstreams.filter((u) => u.state === 'ready' && u.serverCapabilities?.resources);
  }

  private clientOf(u: Upstream): NonNullable<Upstream['client']> {
    if (u.state !== 'ready' || !u.client) throw new McpError(ErrorCode.InternalError, `server '${u.name}' is unavailable (${u.lastError ?? u.state})`);
    return u.client;
  }

  private async byUri<T>(uri: string, run: (client: NonNullable<Upstream['client']>) => Promise<T>): Promise<T> {
    const owner = this.resourceOwners.get(uri);
    if (owner) return run(this.clientOf(owner));
    let last: unknown;
    for (const u of this.resourceUpstreams()) {
      try {
        return await run(this.clientOf(u));
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri}`);
  }

  private async onUpstreamChanged(u: Upstream, what: 'tools' | 'prompts' | 'resources'): Promise<void> {
    if (what === 'tools') {
      await this.vet(u);
    } else if (what === 'prompts') {
      this.rebuildPrompts();
    }
    this.schedule(what);
  }

  /**
   * Pin-checks the upstream's current tool list; only then do those tools become the exposed
   * ones. A check overtaken by a newer list is dropped, so a slow check of an old list never
   * undoes the verdict on a newer one (a rug pull sent right behind a harmless change).
   */
  private vet(u: Upstream): Promise<void> {
    const done = this.vetNow(u).finally(() => {
      if (this.vetting.get(u) === done) this.vetting.delete(u);
    });
    this.vetting.set(u, done);
    return done;
  }

  private async vetNow(u: Upstream): Promise<void> {
    const seq = (this.vetSeq.get(u) ?? 0) + 1;
    this.vetSeq.set(u, seq);
    const tools = unambiguous(u.tools, (name) => this.log(`upstream ${u.name}: lists tool '${name}' more than once; hiding it`));
    let changed: ReadonlySet<string> = new Set();
    if (this.pins) {
      try {
        changed = await this.pins.check(u.name, tools);
      } catch (err) {
        // Fail closed: if pins cannot be checked, hold back every tool of this server.
        this.log(`pinning: ${String(err)}; holding back the tools of ${u.name}`);
        changed = new Set(tools.map((t) => `${u.name}.${t.name}`));
      }
    }
    if (this.vetSeq.get(u) !== seq) return;
    this.vetted.set(u, { tools, changed });
    this.rebuildTools();
  }

  private rebuildTools(): void {
    const names: UpstreamName[] = [];
    const byKey = new Map<string, { u: Upstream; tool: Tool; changed: boolean }>();
    for (const u of this.upstreams) {
      const vetted = this.vetted.get(u);
      if (!vetted) continue;
      for (const tool of vetted.tools) {
        names.push({ server: u.name, name: tool.name });
        byKey.set(`${u.name}\0${tool.name}`, { u, tool, changed: vetted.changed.has(`${u.name}.${tool.name}`) });
      }
    }
    const next = new Map<string, ExposedTool>();
    for (const [exposed, n] of exposeNames(names)) {
      const found = byKey.get(`${n.server}\0${n.name}`);
      if (!found) continue;
      next.set(exposed, { exposed, upstream: found.u, tool: found.tool, action: `${n.server}.${n.name}`, changed: found.changed });
    }
    this.tools = next;
    this.visibleCache.clear();
  }

  private rebuildPrompts(): void {
    const names: UpstreamName[] = [];
    const byKey = new Map<string, ExposedPrompt>();
    for (const u of this.upstreams) {
      for (const prompt of u.prompts) {
        names.push({ server: u.name, name: prompt.name });
        byKey.set(`${u.name}\0${prompt.name}`, { upstream: u, prompt });
      }
    }
    const next = new Map<string, ExposedPrompt>();
    for (const [exposed, n] of exposeNames(names)) {
      const found = byKey.get(`${n.server}\0${n.name}`);
      if (found) next.set(exposed, found);
    }
    this.prompts = next;
  }

  /** Coalesces list-changed notifications: one per kind per tick, not one per upstream event. */
  private schedule(what: 'tools' | 'prompts' | 'resources'): void {
    this.notify[what] = true;
    if (this.notifyTimer) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      const n = { ...this.notify };
      this.notify.tools = this.notify.prompts = this.notify.resources = false;
      for (const s of this.sessions) {
        if (n.tools) void s.server.sendToolListChanged().catch(() => undefined);
        if (n.prompts) void s.server.sendPromptListChanged().catch(() => undefined);
        if (n.resources) void s.server.sendResourceListChanged().catch(() => undefined);
      }
    }, 20);
    this.notifyTimer.unref();
  }

  /** Server→client requests (sampling, elicitation, roots) go to the latest client able to answer. */
  private async relayToClient(request: { method: string; params?: Record<string, unknown> }, signal: AbortSignal): Promise<Record<string, unknown>> {
    const cap = request.method === 'sampling/createMessage' ? 'sampling' : request.method === 'elicitation/create' ? 'elicitation' : 'roots';
    const candidates = [this.lastSession, ...this.sessions].filter((s): s is ProxySession => s !== undefined && Boolean(s.server.getClientCapabilities()?.[cap]));
    const session = candidates[0];
    if (!session) throw new McpError(ErrorCode.MethodNotFound, `no connected client supports ${cap}`);
    const schema = cap === 'sampling' ? CreateMessageResultSchema : cap === 'elicitation' ? ElicitResultSchema : ListRootsResultSchema;
    return session.server.request(request as never, schema, { signal, timeout: this.config.tools.callTimeoutMs }) as Promise<Record<string, unknown>>;
  }
}

/** Only the proxy speaks for Kavach: `dev.kavach/*` keys from anyone else are dropped. */
function withoutKavachMeta(meta: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in meta) {
    if (!k.startsWith(KAVACH_META_PREFIX)) continue;
    out ??= { ...meta };
    delete out[k];
  }
  return out ?? meta;
}

/**
 * An upstream's JSON-RPC error without Kavach keys in its data: a gated refusal carries its verdict
 * in `data`, and a server must not be able to make its own error look like one.
 */
function scrubbed(err: unknown): unknown {
  if (!(err instanceof McpError) || err.data === null || typeof err.data !== 'object' || Array.isArray(err.data)) return err;
  const data = withoutKavachMeta(err.data as Record<string, unknown>);
  if (data === err.data) return err;
  let empty = true;
  for (const _ in data) {
    empty = false;
    break;
  }
  const out = new McpError(err.code, '', empty ? undefined : data);
  out.message = err.message;
  return out;
}

function fromUpstream<T>(request: Promise<T>): Promise<T> {
  return request.catch((err: unknown) => {
    throw scrubbed(err);
  });
}

function proxyRefusal(code: ProxyRefuseCode, evaluator: string, reason: string, byPolicy = true): CallToolResult {
  const verdict: ProxyRefusal = { kind: 'refuse', evaluationId: randomUUID(), code, evaluator, reason };
  const text = byPolicy ? `Refused by policy [${code}] ${evaluator}: ${reason}.` : `[${code}] ${reason.charAt(0).toUpperCase()}${reason.slice(1)}.`;
  return {
    isError: true,
    content: [{ type: 'text', text }],
    _meta: { [VERDICT_META_KEY]: verdict },
  };
}

/** A gated resource or prompt request refused: a JSON-RPC error whose message is the refusal text. */
export function refusalError(verdict: Exclude<Verdict, { kind: 'permit' }>): McpError {
  const text = formatRefusal(verdict);
  const err = new McpError(ErrorCode.InvalidRequest, text, { [VERDICT_META_KEY]: verdict });
  // McpError prefixes "MCP error -32600: "; the client adds its own, so send the text as is.
  err.message = text;
  return err;
}

/** Client `_meta` minus Kavach's keys, plus the permit when the gate gave one. */
function withForwardedMeta<P extends { _meta?: Record<string, unknown> }>(params: P, verdict: PermitVerdict | undefined): P {
  const meta = params._meta ? withoutKavachMeta(params._meta) : undefined;
  if (verdict?.permit === undefined) return meta === params._meta ? params : { ...params, _meta: meta };
  return { ...params, _meta: { ...meta, [PERMIT_META_KEY]: verdict.permit } };
}

/** An upstream's result, without verdicts it made up, with the observed one in observe mode. */
function stamped<R extends { _meta?: Record<string, unknown> }>(result: R, verdict: PermitVerdict | undefined): R {
  if (result._meta) result._meta = withoutKavachMeta(result._meta);
  if (verdict?.observed && verdict.observed.kind !== 'permit') result._meta = { ...result._meta, [OBSERVED_META_KEY]: verdict.observed };
  return result;
}

export function refusalResult(verdict: Exclude<Verdict, { kind: 'permit' }>): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: formatRefusal(verdict) }], _meta: { [VERDICT_META_KEY]: verdict } };
}

/** A tool name listed twice is ambiguous (which definition would run?): neither is exposed. */
function unambiguous(tools: readonly Tool[], onDuplicate: (name: string) => void): Tool[] {
  const count = new Map<string, number>();
  for (const t of tools) count.set(t.name, (count.get(t.name) ?? 0) + 1);
  const out: Tool[] = [];
  for (const t of tools) {
    const n = count.get(t.name) as number;
    if (n === 1) out.push(t);
    else if (n > 1) {
      onDuplicate(t.name);
      count.set(t.name, 0);
    }
  }
  return out;
}
