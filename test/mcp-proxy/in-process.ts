import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type ClientCapabilities,
  type JSONRPCMessage,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { Gate, type GateOptions } from '../../src/engine/gate.ts';
import { parseConfig, type PrincipalConfig, type ProxyConfig } from '../../src/mcp-proxy/config.ts';
import { installToolCallFastPath } from '../../src/mcp-proxy/fast-path.ts';
import type { ToolPins } from '../../src/mcp-proxy/pinning.ts';
import { ProxyCore, type OutcomeSink } from '../../src/mcp-proxy/proxy.ts';
import type { RestartPolicy } from '../../src/mcp-proxy/restart-backoff.ts';
import { createSession } from '../../src/mcp-proxy/session.ts';
import type { ProxyTelemetry } from '../../src/mcp-proxy/telemetry.ts';

/**
 * An upstream MCP server held in the test: its tool list can be changed at will (a hostile or
 * buggy server), and every call it receives is kept.
 */
export class FakeUpstream {
  tools: Tool[];
  readonly calls: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> }[] = [];
  /** What a call returns (default: "ran <name>"). */
  respond: ((params: { name: string }) => CallToolResult) | undefined;
  /** Resource subscriptions it holds, by URI. */
  readonly subscribed = new Set<string>();
  /** Listed resources; any URI can be read (the text says which). */
  resources: Resource[] = [];
  resourceTemplates: ResourceTemplate[] = [];
  prompts: Prompt[] = [];
  /** Every resources/read and prompts/get it received. */
  readonly reads: { uri: string; _meta?: Record<string, unknown> }[] = [];
  readonly promptGets: { name: string; arguments?: Record<string, string>; _meta?: Record<string, unknown> }[] = [];
  /** `_meta` it puts in its answers to resources/read, prompts/get and completion/complete. */
  answerMeta: Record<string, unknown> | undefined;
  /** Every completion/complete it received. */
  readonly completions: { ref: { type: string; name?: string; uri?: string }; _meta?: Record<string, unknown> }[] = [];
  server: Server | undefined;

  constructor(tools: Tool[], more: { resources?: Resource[]; resourceTemplates?: ResourceTemplate[]; prompts?: Prompt[] } = {}) {
    this.tools = tools;
    if (more.resources) this.resources = more.resources;
    if (more.resourceTemplates) this.resourceTemplates = more.resourceTemplates;
    if (more.prompts) this.prompts = more.prompts;
  }

  /** A fresh server per connection, as a restarted process would be. */
  connect(): InMemoryTransport {
    const [ours, theirs] = InMemoryTransport.createLinkedPair();
    const server = new Server(
      { name: 'fake', version: '1.0.0' },
      { capabilities: { tools: { listChanged: true }, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} } },
    );
    server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: this.resources }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: this.resourceTemplates }));
    server.setRequestHandler(ReadResourceRequestSchema, (request) => {
      this.reads.push(request.params);
      return { contents: [{ uri: request.params.uri, text: `contents of ${request.params.uri}` }], ...this.meta() };
    });
    server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: this.prompts }));
    server.setRequestHandler(GetPromptRequestSchema, (request) => {
      this.promptGets.push(request.params);
      if (!this.prompts.some((p) => p.name === request.params.name)) throw new McpError(-32602, `no prompt ${request.params.name}`);
      return { messages: [{ role: 'user', content: { type: 'text', text: `prompt ${request.params.name}` } }], ...this.meta() };
    });
    server.setRequestHandler(CompleteRequestSchema, (request) => {
      this.completions.push(request.params);
      return { completion: { values: ['kavach'], hasMore: false }, ...this.meta() };
    });
    server.setRequestHandler(SubscribeRequestSchema, (request) => {
      this.subscribed.add(request.params.uri);
      return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
      this.subscribed.delete(request.params.uri);
      return {};
    });
    server.setRequestHandler(SetLevelRequestSchema, () => ({}));
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: this.tools }));
    server.setRequestHandler(CallToolRequestSchema, (request): CallToolResult => {
      this.calls.push(request.params);
      return this.respond?.(request.params) ?? { content: [{ type: 'text', text: `ran ${request.params.name}` }] };
    });
    this.server = server;
    void server.connect(theirs);
    return ours;
  }

  private meta(): { _meta?: Record<string, unknown> } {
    return this.answerMeta ? { _meta: this.answerMeta } : {};
  }

  async setTools(tools: Tool[]): Promise<void> {
    this.tools = tools;
    await this.server?.sendToolListChanged();
  }
}

/** A fake upstream whose handlers a test replaces after it connects (a hostile or buggy server). */
export class ScriptedUpstream extends FakeUpstream {
  constructor(
    tools: Tool[] = [tool('a')],
    private readonly script: (server: Server, self: ScriptedUpstream) => void = () => undefined,
  ) {
    super(tools);
  }

  override connect(): InMemoryTransport {
    const t = super.connect();
    this.script(this.server as Server, this);
    return t;
  }
}

/** A value nested deeper than JSON.stringify can take (JSON.parse accepts it). */
export function nestedTooDeep(): unknown {
  let v: unknown = [];
  for (let i = 0; i < 100_000; i++) v = [v];
  return v;
}

/** Polls `probe` until it holds (a wait for something that must happen, never for something that must not). */
export async function until(what: string, probe: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A raw JSON-RPC client on its own session (it can send what the SDK client never would); its
 * proxy side serialises on send, as LineServerTransport does. `got` keeps only answers: the
 * session also hears list-changed notifications.
 */
export async function rawClient(
  p: InProcessProxy,
  principal: PrincipalConfig = ALICE,
): Promise<{
  got: JSONRPCMessage[];
  send: (m: JSONRPCMessage) => Promise<void>;
  close: () => Promise<void>;
}> {
  const session = createSession(p.core, principal, { startUpstreamsOnInit: true });
  p.core.addSession(session);
  const [ours, theirs] = InMemoryTransport.createLinkedPair();
  const send = theirs.send.bind(theirs);
  theirs.send = (message, options) => {
    JSON.stringify(message);
    return send(message, options);
  };
  await session.server.connect(theirs);
  installToolCallFastPath(theirs, p.core, session, () => undefined);
  const got: JSONRPCMessage[] = [];
  ours.onmessage = (m) => void ('id' in m && got.push(m));
  await ours.start();
  return { got, send: (m) => ours.send(m), close: () => ours.close() };
}

export const tool = (name: string, description = `the ${name} tool`): Tool => ({ name, description, inputSchema: { type: 'object' } });

export const ALICE: PrincipalConfig = { principalId: 'alice', principalKind: 'agent', roles: [] };

export interface InProcessProxy {
  client: Client;
  config: ProxyConfig;
  core: ProxyCore;
  gate: Gate;
  /** Another downstream client (as in HTTP mode), acting as `principal`. */
  connect(principal: PrincipalConfig, capabilities?: ClientCapabilities, transport?: 'tcp'): Promise<Client>;
  close(): Promise<void>;
}

/**
 * The proxy core with in-memory upstreams and one downstream SDK client, wired like
 * `kavach mcp` in stdio mode (fast path included), without processes.
 */
export async function inProcessProxy(opts: {
  policy: string;
  upstreams: Record<string, FakeUpstream>;
  gateOptions?: GateOptions;
  pins?: Pick<ToolPins, 'load' | 'check'>;
  outcomes?: OutcomeSink;
  tools?: Record<string, unknown>;
  /** Extra keys of the config's [gate] table (e.g. gate_resources). */
  gate?: Record<string, unknown>;
  /** The config's [http] table (for serving Streamable HTTP in-process). */
  http?: Record<string, unknown>;
  /** The config's [approvals] table. */
  approvals?: Record<string, unknown>;
  /** What the first client declares (e.g. elicitation); it connects when the proxy is built unless `connectFirst` is false. */
  capabilities?: ClientCapabilities;
  log?: (message: string) => void;
  /** How failed upstreams are restarted (short waits keep tests fast). */
  restartPolicy?: RestartPolicy;
  /** Spans and metrics per request, as `[telemetry]` sets up. */
  telemetry?: ProxyTelemetry;
}): Promise<InProcessProxy> {
  const servers: Record<string, unknown> = {};
  for (const name of Object.keys(opts.upstreams)) servers[name] = { command: 'unused' };
  const config = parseConfig({
    gate: { policy: 'unused.toml', ...opts.gate },
    servers,
    tools: { pinning: opts.pins !== undefined, ...opts.tools },
    ...(opts.http ? { http: opts.http } : {}),
    ...(opts.approvals ? { approvals: opts.approvals } : {}),
  });
  const gate = Gate.fromToml(opts.policy, opts.gateOptions);
  const core = new ProxyCore({
    config,
    gate,
    pins: opts.pins as ToolPins | undefined,
    outcomes: opts.outcomes,
    log: opts.log ?? (() => undefined),
    transportFor: (server) => (opts.upstreams[server.name] as FakeUpstream).connect(),
    ...(opts.restartPolicy ? { restartPolicy: opts.restartPolicy } : {}),
    ...(opts.telemetry ? { telemetry: opts.telemetry } : {}),
  });
  const clients: Client[] = [];
  /** A client on a session of its own; `transport: 'tcp'` makes it an HTTP client's session. */
  const connect = async (principal: PrincipalConfig, capabilities: ClientCapabilities = {}, transport?: 'tcp'): Promise<Client> => {
    const session = createSession(core, principal, { startUpstreamsOnInit: true });
    if (transport) session.transport = transport;
    core.addSession(session);
    session.server.onclose = () => core.removeSession(session);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await session.server.connect(serverSide);
    installToolCallFastPath(serverSide, core, session, () => core.startUpstreams(session.server.getClientCapabilities()));
    const client = new Client({ name: 'test', version: '1.0.0' }, { capabilities });
    await client.connect(clientSide);
    clients.push(client);
    return client;
  };
  const client = await connect(ALICE, opts.capabilities);
  return {
    client,
    config,
    core,
    gate,
    connect,
    async close() {
      for (const c of clients) await c.close();
      await core.close();
      await gate.close();
    },
  };
}

/** The MCP error a request was refused with; throws when it was answered, or failed otherwise. */
export async function errorOf(request: Promise<unknown>): Promise<McpError> {
  const err = await request.then(
    () => new Error('the request was answered, not refused'),
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw err;
  return err;
}
