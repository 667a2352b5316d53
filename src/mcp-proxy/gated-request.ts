import type { ActionContext } from '../engine/context.ts';
import type { PermitVerdict } from '../engine/verdict.ts';
import type { PrincipalConfig } from './config.ts';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import { refusalError } from './refusals.ts';
import { couldBePermitted } from './visibility.ts';

/** One request the gate decides: an action on a server, with its params and, for resources and prompts, what it names. */
export interface GatedRequest {
  /** `<server>.<tool>`, or `<server>.<method>` for resources and prompts (`docs.resources/read`). */
  action: string;
  /** The server the request goes to: the permit is for it alone. */
  audience: string;
  params: Record<string, unknown>;
  /** The URI read or subscribed to, or the prompt's name. */
  resource?: string;
}

/**
 * The one place an MCP request becomes an `ActionContext`: tools/call, and with `gate_resources`
 * resources/read, resources/subscribe and prompts/get. Who asks is the session's principal, from
 * the session's address.
 */
export function requestContext(session: ProxySession, request: GatedRequest): ActionContext {
  const principal = session.principal;
  const ctx: ActionContext = {
    principalId: principal.principalId,
    principalKind: principal.principalKind,
    roles: principal.roles,
    actionName: request.action,
  };
  if (request.resource !== undefined) ctx.resource = request.resource;
  ctx.params = request.params;
  ctx.sessionId = session.id;
  ctx.audience = request.audience;
  // No callId: the proxy evaluates each request once, and a client that reused a JSON-RPC id
  // would otherwise have identical calls charged once and executed many times.
  if (session.ip !== undefined) ctx.ip = session.ip;
  return ctx;
}

export type GatedMethod = 'resources/read' | 'resources/subscribe' | 'prompts/get';

/** `[gate] gate_resources`: the session's principal asks the gate; a refusal is a JSON-RPC error. */
export async function gateRequest(
  shared: ProxyShared,
  session: ProxySession,
  server: string,
  method: GatedMethod,
  resource: string,
  params: Record<string, unknown>,
): Promise<PermitVerdict> {
  const verdict = await shared.gate.evaluate(
    requestContext(session, { action: `${server}.${method}`, audience: server, params, resource }),
  );
  if (verdict.kind !== 'permit') throw refusalError(verdict);
  return verdict;
}

/** Undefined when lists are not filtered; else whether an action (on a resource) could be permitted. */
export function listFilter(shared: ProxyShared, principal: PrincipalConfig): ((action: string, resource?: string) => boolean) | undefined {
  const { config } = shared;
  if (!config.gate.gateResources || config.tools.showAll || config.gate.observeOnly) return undefined;
  const policies = shared.gate.policies;
  return (action, resource) => couldBePermitted(policies, principal, action, resource);
}
