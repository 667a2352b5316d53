import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  RootsListChangedNotificationSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { PrincipalConfig } from './config.ts';
import type { ProxyCore } from './proxy.ts';
import type { ProxySession } from './proxy-state.ts';

export const PROXY_INFO = { name: 'kavach', version: '0.1.0' };

/**
 * One downstream connection: an SDK low-level `Server` whose handlers call into the shared core.
 * The session id is fresh per connection: session-scoped limits and invalidation apply to it.
 */
export function createSession(core: ProxyCore, principal: PrincipalConfig, opts: { startUpstreamsOnInit: boolean }): ProxySession {
  const server = new Server(PROXY_INFO, {
    capabilities: {
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      completions: {},
      logging: {},
    },
    instructions:
      'Tools are served through the Kavach execution gate: every call is checked against policy. A refused call returns an error whose text says why and what would be permitted.',
  });
  const session: ProxySession = { id: randomUUID(), principal, server };
  /** HTTP: the session as of this request, from the address it came from (serve-http passes it as authInfo). */
  const from = (extra: { authInfo?: AuthInfo }): ProxySession => {
    const ip = extra.authInfo?.extra?.ip;
    return typeof ip === 'string' && ip !== session.ip ? { ...session, ip } : session;
  };

  // Upstreams start once the client said what it supports (sampling, roots...). A client that
  // skips `notifications/initialized` still gets them on its first request.
  const start = (): void => {
    if (opts.startUpstreamsOnInit) core.startUpstreams(server.getClientCapabilities());
  };
  server.oninitialized = start;
  server.setRequestHandler(ListToolsRequestSchema, async () => {
    start();
    return { tools: await core.listTools(principal, session) };
  });
  server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
    start();
    return core.callTool(from(extra), request.params, extra as never);
  });
  server.setRequestHandler(ListPromptsRequestSchema, async () => {
    start();
    return { prompts: await core.listPrompts(principal) };
  });
  server.setRequestHandler(GetPromptRequestSchema, (request, extra) => core.getPrompt(from(extra), request.params, extra.signal) as never);
  server.setRequestHandler(ListResourcesRequestSchema, async () => {
    start();
    return { resources: await core.listResources(principal) };
  });
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: await core.listResourceTemplates(principal),
  }));
  server.setRequestHandler(
    ReadResourceRequestSchema,
    (request, extra) => core.readResource(from(extra), request.params, extra.signal) as never,
  );
  server.setRequestHandler(SubscribeRequestSchema, async (request, extra) => {
    await core.subscribe(session, request.params.uri, from(extra));
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    await core.unsubscribe(session, request.params.uri);
    return {};
  });
  server.setRequestHandler(CompleteRequestSchema, (request, extra) => core.complete(request.params, extra.signal) as never);
  server.setRequestHandler(SetLevelRequestSchema, async (request) => {
    await core.setLogLevel(session, request.params.level);
    return {};
  });
  server.setNotificationHandler(RootsListChangedNotificationSchema, () => core.rootsChanged());
  return session;
}
