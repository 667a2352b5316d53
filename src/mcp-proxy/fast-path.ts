import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ProxyCore } from './proxy.ts';
import type { ProxySession } from './proxy-state.ts';
import type { ToolCallExtra } from './tool-calls.ts';
import type { CallSignal } from './upstream-call.ts';

export type RequestId = string | number;

/** Where one tools/call's messages go: a transport (stdio), or the HTTP response of its POST. */
export interface ToolCallReply {
  /** The answer (a result or an error); not called for a cancelled call. */
  answer(message: JSONRPCMessage): Promise<void>;
  /** A notification about call `requestId` (progress), before its answer. */
  notify(notification: JSONRPCMessage, requestId: RequestId): Promise<void>;
  /** The call was cancelled: no answer will come (the client has forgotten the request). */
  abandon(): void;
}

/**
 * Serves `tools/call` straight off the downstream side, before the SDK's generic request
 * machinery, and leaves every other message to the SDK `Server`. The gate, the forwarding and
 * the outcome record are the same code as the SDK path (`core.callTool`); what is skipped is
 * per-request bookkeeping the proxy does not need (about 100 µs per call on a small machine).
 * Cancellations of these calls are handled here too, since the SDK never saw the request.
 * One per session: stdio feeds it from its transport, HTTP from its transport and from the
 * requests it serves directly (`serve`).
 */
export class ToolCallServer {
  private readonly inflight = new Map<RequestId, ServedCall>();

  constructor(
    private readonly core: ProxyCore,
    private readonly session: ProxySession,
    private readonly beforeCall: () => void,
  ) {}

  /** Takes tools/call requests and their cancellations off `transport`; the rest go on to the SDK. */
  install(transport: Transport): void {
    const deliver = transport.onmessage;
    const reply = new TransportReply(transport);
    transport.onmessage = (message, extra) => {
      const m = message as { id?: RequestId; method?: string; params?: Record<string, unknown> };
      if (m.method === 'tools/call' && m.id !== undefined) {
        this.serve(m.id, m.params, reply, this.callerFrom(extra?.authInfo)).catch(reply.reportError);
        return;
      }
      if (m.method === 'notifications/cancelled' && m.id === undefined && this.cancel(m.params)) return;
      deliver?.(message, extra);
    };
  }

  /** A client's `notifications/cancelled` for a call served here; false when it names none. */
  cancel(params: Record<string, unknown> | undefined): boolean {
    const call = this.inflight.get(params?.requestId as RequestId);
    if (!call) return false;
    call.abort(params?.reason ?? 'cancelled by the client');
    return true;
  }

  /** The client behind `reply` went away before its answer: its call, if still served, is cancelled. */
  replyGone(requestId: RequestId, reply: ToolCallReply): void {
    const call = this.inflight.get(requestId);
    if (call?.reply === reply) call.abort('the client disconnected');
  }

  /**
   * The session as of one request: over HTTP each request is judged from where it came (`ip_in`,
   * IP drift), not from where its session opened.
   */
  callerFrom(authInfo: AuthInfo | undefined): ProxySession {
    const ip = authInfo?.extra?.ip;
    return typeof ip === 'string' ? this.callerAt(ip) : this.session;
  }

  callerAt(ip: string | undefined): ProxySession {
    return ip === undefined || ip === this.session.ip ? this.session : { ...this.session, ip };
  }

  /** One tools/call, answered through `reply` (a cancelled one is not answered). */
  async serve(id: RequestId, params: Record<string, unknown> | undefined, reply: ToolCallReply, caller: ProxySession): Promise<void> {
    const name = params?.name;
    const args = params?.arguments;
    const meta = params?._meta;
    if (typeof name !== 'string' || (args !== undefined && !isObject(args)) || (meta !== undefined && !isObject(meta))) {
      await reply.answer({
        jsonrpc: '2.0',
        id,
        error: { code: ErrorCode.InvalidParams, message: 'Invalid tools/call request: params need a string name and object arguments' },
      });
      return;
    }
    if (this.inflight.has(id)) {
      // One id, one call: a second call under an id still in flight would run unattributably (two
      // answers with one id) and take over the first one's cancellation.
      await reply.answer({
        jsonrpc: '2.0',
        id,
        error: {
          code: ErrorCode.InvalidRequest,
          message: `Invalid Request: request id ${JSON.stringify(id)} is already in use by a tools/call in flight`,
        },
      });
      return;
    }
    const call = new ServedCall(id, reply);
    this.inflight.set(id, call);
    try {
      this.beforeCall();
      const request: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> } = { name };
      if (args !== undefined) request.arguments = args as Record<string, unknown>;
      if (meta !== undefined) request._meta = meta as Record<string, unknown>;
      const result = await this.core.callTool(caller, request, call);
      // A cancelled request gets no response (the client has forgotten it).
      if (call.aborted) reply.abandon();
      else await reply.answer({ jsonrpc: '2.0', id, result });
    } catch (err) {
      if (call.aborted) {
        reply.abandon();
        return;
      }
      const code = err instanceof McpError ? err.code : ErrorCode.InternalError;
      const data = err instanceof McpError ? err.data : undefined;
      const message =
        err instanceof McpError
          ? err.message.replace(/^MCP error -?\d+: /, '')
          : `internal error: ${(err as Error)?.message ?? String(err)}`;
      await reply.answer({ jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } });
    } finally {
      this.inflight.delete(id);
    }
  }
}

/** The stdio fast path (and tests): tools/call served off `transport`, the rest left to the SDK. */
export function installToolCallFastPath(
  transport: Transport,
  core: ProxyCore,
  session: ProxySession,
  beforeCall: () => void,
): ToolCallServer {
  const calls = new ToolCallServer(core, session, beforeCall);
  calls.install(transport);
  return calls;
}

/** Answers on the transport the request came in on (over HTTP, the SDK routes them to its POST by id). */
class TransportReply implements ToolCallReply {
  /** Made once, not per call: nothing should reach it, but an unhandled rejection ends the process. */
  readonly reportError: (err: unknown) => void;

  constructor(private readonly transport: Transport) {
    this.reportError = (err) => transport.onerror?.(err as Error);
  }

  answer(message: JSONRPCMessage): Promise<void> {
    const sent = this.trySend(message);
    if (!(sent instanceof Error)) return sent;
    // The line transport serialises before it returns a promise: an upstream's answer nested
    // deeper than JSON.stringify goes throws here. The request still gets an answer.
    if (!('id' in message) || 'method' in message) return Promise.resolve();
    const fallback = this.trySend({
      jsonrpc: '2.0',
      id: message.id,
      error: { code: ErrorCode.InternalError, message: `internal error: the answer could not be encoded (${sent.message})` },
    });
    return fallback instanceof Error ? Promise.resolve() : fallback;
  }

  notify(notification: JSONRPCMessage, requestId: RequestId): Promise<void> {
    // Related to its request: over HTTP the SDK then streams it on that request's POST, not on the
    // session's GET stream (where it would be lost with none open).
    const sent = this.trySend(notification, requestId);
    return sent instanceof Error ? Promise.resolve() : sent;
  }

  abandon(): void {}

  private trySend(message: JSONRPCMessage, relatedRequestId?: RequestId): Promise<void> | Error {
    try {
      const sent = relatedRequestId === undefined ? this.transport.send(message) : this.transport.send(message, { relatedRequestId });
      return sent.catch(() => undefined);
    } catch (err) {
      return err as Error;
    }
  }
}

function isObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * One call being served: its cancellation flag (what an AbortController gives, without its
 * EventTarget: one per call costs more than the rest of the call) and its `extra` for
 * `core.callTool`, in one object.
 */
class ServedCall implements CallSignal, ToolCallExtra {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined;

  constructor(
    readonly requestId: RequestId,
    readonly reply: ToolCallReply,
  ) {}

  get signal(): CallSignal {
    return this;
  }

  sendNotification(n: never): Promise<void> {
    return this.reply.notify({ jsonrpc: '2.0', ...(n as { method: string; params?: Record<string, unknown> }) }, this.requestId);
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners?.splice(i, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const listener of listeners ?? []) listener();
  }
}
