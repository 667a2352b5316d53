import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ProxyCore } from './proxy.ts';
import type { ProxySession } from './proxy-state.ts';
import type { CallSignal } from './upstream-call.ts';

type RequestId = string | number;

/**
 * Serves `tools/call` straight off the downstream transport, before the SDK's generic request
 * machinery, and leaves every other message to the SDK `Server`. The gate, the forwarding and
 * the outcome record are the same code as the SDK path (`core.callTool`); what is skipped is
 * per-request bookkeeping the proxy does not need (about 100 µs per call on a small machine).
 * Cancellations of these calls are handled here too, since the SDK never saw the request.
 */
export function installToolCallFastPath(transport: Transport, core: ProxyCore, session: ProxySession, beforeCall: () => void): void {
  const deliver = transport.onmessage;
  const inflight = new Map<RequestId, CallCancel>();
  const trySend = (message: JSONRPCMessage): Promise<void> | Error => {
    try {
      return transport.send(message).catch(() => undefined);
    } catch (err) {
      return err as Error;
    }
  };
  const send = (message: JSONRPCMessage): Promise<void> => {
    const sent = trySend(message);
    if (!(sent instanceof Error)) return sent;
    // The line transport serialises before it returns a promise: an upstream's answer nested
    // deeper than JSON.stringify goes throws here. The request still gets an answer.
    if (!('id' in message) || 'method' in message) return Promise.resolve();
    const fallback = trySend({
      jsonrpc: '2.0',
      id: message.id,
      error: { code: ErrorCode.InternalError, message: `internal error: the answer could not be encoded (${sent.message})` },
    });
    return fallback instanceof Error ? Promise.resolve() : fallback;
  };
  // Made once, not per call: nothing should reach it, but an unhandled rejection ends the process.
  const reportError = (err: unknown): void => transport.onerror?.(err as Error);
  const sendNotification = ((n: { method: string; params?: Record<string, unknown> }) => send({ jsonrpc: '2.0', ...n })) as never;

  transport.onmessage = (message, extra) => {
    const m = message as { id?: RequestId; method?: string; params?: Record<string, unknown> };
    if (m.method === 'tools/call' && m.id !== undefined) {
      handle(m.id, m.params).catch(reportError);
      return;
    }
    if (m.method === 'notifications/cancelled' && m.id === undefined) {
      const controller = inflight.get(m.params?.requestId as RequestId);
      if (controller) {
        controller.abort(m.params?.reason ?? 'cancelled by the client');
        return;
      }
    }
    deliver?.(message, extra);
  };

  async function handle(id: RequestId, params: Record<string, unknown> | undefined): Promise<void> {
    const name = params?.name;
    const args = params?.arguments;
    const meta = params?._meta;
    if (typeof name !== 'string' || (args !== undefined && !isObject(args)) || (meta !== undefined && !isObject(meta))) {
      await send({
        jsonrpc: '2.0',
        id,
        error: { code: ErrorCode.InvalidParams, message: 'Invalid tools/call request: params need a string name and object arguments' },
      });
      return;
    }
    if (inflight.has(id)) {
      // One id, one call: a second call under an id still in flight would run unattributably (two
      // answers with one id) and take over the first one's cancellation.
      await send({
        jsonrpc: '2.0',
        id,
        error: {
          code: ErrorCode.InvalidRequest,
          message: `Invalid Request: request id ${JSON.stringify(id)} is already in use by a tools/call in flight`,
        },
      });
      return;
    }
    const controller = new CallCancel();
    inflight.set(id, controller);
    try {
      beforeCall();
      const request: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> } = { name };
      if (args !== undefined) request.arguments = args as Record<string, unknown>;
      if (meta !== undefined) request._meta = meta as Record<string, unknown>;
      const result = await core.callTool(session, request, {
        requestId: id,
        signal: controller,
        sendNotification,
      });
      // A cancelled request gets no response (the client has forgotten it).
      if (!controller.aborted) await send({ jsonrpc: '2.0', id, result });
    } catch (err) {
      if (controller.aborted) return;
      const code = err instanceof McpError ? err.code : ErrorCode.InternalError;
      const data = err instanceof McpError ? err.data : undefined;
      const message =
        err instanceof McpError
          ? err.message.replace(/^MCP error -?\d+: /, '')
          : `internal error: ${(err as Error)?.message ?? String(err)}`;
      await send({ jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } });
    } finally {
      inflight.delete(id);
    }
  }
}

function isObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A cancellation flag with listeners: what an AbortController gives, without its EventTarget. */
class CallCancel implements CallSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined;

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
