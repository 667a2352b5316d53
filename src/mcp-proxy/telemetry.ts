import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Context } from '../telemetry/otel-shapes.ts';
import type { Verdict } from '../engine/verdict.ts';

/**
 * What the proxy reports per request (DESIGN §12), implemented on OpenTelemetry in
 * src/telemetry/proxy-telemetry.ts and loaded only when `[telemetry]` is configured. Absent, the
 * hot path checks one property and runs as if telemetry did not exist.
 */
export interface ProxyTelemetry {
  /** One `tools/call` from a client: its server span (a child of the client's `traceparent`) and duration. */
  toolCall(call: ToolCallInfo): ToolCallTrace;
}

export interface ToolCallInfo {
  requestId: string | number;
  /** The proxy's session (what the audit log records as `session`). */
  sessionId: string;
  /** `pipe` for stdio, `tcp` for Streamable HTTP. */
  transport: 'pipe' | 'tcp';
  /** The request's `params._meta`: `traceparent` and `tracestate` continue the client's trace. */
  meta: Record<string, unknown> | undefined;
}

export interface ToolCallTrace {
  /** The context the gate's `kavach.evaluate` span is a child of (the server span). */
  readonly context: Context;
  /** The request's trace (32 hex digits), for the outcome's audit record; undefined without tracing. */
  readonly traceId: string | undefined;
  /**
   * The tool the call resolved to: its exposed name (`<server>__<tool>`) and action
   * (`<server>.<tool>`). Until then the call's name is not reported: a client chooses it.
   */
  resolved(tool: string, action: string): void;
  /** The gate's verdict (again after an approval settles it). */
  verdict(verdict: Verdict): void;
  /**
   * The forwarded call: a client span; `meta` is its `traceparent` / `tracestate`, for the
   * upstream's `_meta` in place of the client's (undefined without tracing: the client's pass on).
   */
  upstream(server: string, tool: string): UpstreamTrace;
  /** The answer the client gets (a refusal included), or the error it gets instead. */
  end(result: CallToolResult | undefined, error: unknown): void;
}

export interface UpstreamTrace {
  readonly meta: Record<string, string> | undefined;
  end(result: CallToolResult | undefined, error: unknown): void;
}
