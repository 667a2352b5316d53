import {
  context as activeContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Histogram,
  type Meter,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { VERDICT_META_KEY } from '../mcp-proxy/meta.ts';
import type { ProxyRefuseCode } from '../mcp-proxy/refusals.ts';
import type { ProxyTelemetry, ToolCallInfo, ToolCallTrace, UpstreamTrace } from '../mcp-proxy/telemetry.ts';
import type { Verdict } from '../engine/verdict.ts';
import { verdictAttributes, verdictCounter } from './gate-telemetry.ts';

/**
 * The proxy's spans and metrics on OpenTelemetry, named by the semantic conventions for MCP:
 * a SERVER span `tools/call {gen_ai.tool.name}` per request, parented by the client's W3C
 * `traceparent` in `params._meta`; a CLIENT span for the forwarded call, whose context goes
 * upstream in `_meta`; `mcp.server.operation.duration` and `mcp.client.operation.duration`.
 */

/**
 * What a tool name that named no tool becomes (the conventions' value for an unknown one): a client
 * choosing names must not mint metric series or span names, each held and exported.
 */
const UNKNOWN_TOOL = '_OTHER';
/** The longest tool name telemetry carries: a server names its tools, and nothing else bounds them. */
const TOOL_NAME_MAX = 128;
const toolLabel = (name: string): string => (name.length > TOOL_NAME_MAX ? name.slice(0, TOOL_NAME_MAX) : name);

/** The conventions' advice for MCP operation durations (seconds). */
const OPERATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/** W3C Trace Context from `_meta`: only string values are read (a client may put anything there). */
const metaGetter: TextMapGetter<Record<string, unknown>> = {
  get: (carrier, key) => {
    const v = carrier[key];
    return typeof v === 'string' ? v : undefined;
  },
  keys: (carrier) => Object.keys(carrier),
};
const metaSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

export function proxyTelemetry(opts: { tracer?: Tracer; meter?: Meter }): ProxyTelemetry {
  const { tracer, meter } = opts;
  const propagator = new W3CTraceContextPropagator();
  const seconds = (name: string, description: string): Histogram | undefined =>
    meter?.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: OPERATION_BUCKETS } });
  const serverDuration = seconds('mcp.server.operation.duration', 'MCP request duration as observed on the proxy, from request to answer');
  const clientDuration = seconds('mcp.client.operation.duration', 'MCP request duration as observed by the proxy calling an upstream');
  const verdicts = meter ? verdictCounter(meter) : undefined;

  return {
    toolCall(call: ToolCallInfo): ToolCallTrace {
      const started = performance.now();
      const common: Attributes = {
        'mcp.method.name': 'tools/call',
        // Until the name resolves to a tool the proxy exposes.
        'gen_ai.tool.name': UNKNOWN_TOOL,
        'gen_ai.operation.name': 'execute_tool',
        'network.transport': call.transport,
      };
      const parent = call.meta ? propagator.extract(activeContext.active(), call.meta, metaGetter) : activeContext.active();
      const span = tracer?.startSpan(
        `tools/call ${UNKNOWN_TOOL}`,
        {
          kind: SpanKind.SERVER,
          attributes: { ...common, 'jsonrpc.request.id': String(call.requestId), 'mcp.session.id': call.sessionId },
        },
        parent,
      );
      const context: Context = span ? trace.setSpan(parent, span) : parent;
      const traceId = span && trace.isSpanContextValid(span.spanContext()) ? span.spanContext().traceId : undefined;
      let action = '';
      return {
        context,
        traceId,
        resolved(tool: string, name: string) {
          action = name;
          const label = toolLabel(tool);
          common['gen_ai.tool.name'] = label;
          span?.updateName(`tools/call ${label}`);
          span?.setAttributes({ 'gen_ai.tool.name': label, 'kavach.action': name });
        },
        verdict(verdict: Verdict) {
          span?.setAttributes(verdictAttributes(verdict, undefined));
          span?.setAttribute('kavach.evaluation_id', verdict.evaluationId);
        },
        upstream(server: string, tool: string): UpstreamTrace {
          return upstreamCall(tracer, propagator, clientDuration, context, server, tool);
        },
        end(result: CallToolResult | undefined, error: unknown) {
          // A refusal the proxy gave itself (a changed tool, a server down, an answer withheld): counted here.
          const own = proxyRefusalOf(result);
          if (own) {
            span?.setAttributes({ 'kavach.verdict': 'refuse', 'kavach.code': own.code, 'kavach.evaluation_id': own.evaluationId });
            verdicts?.add(
              1,
              action
                ? { 'kavach.verdict': 'refuse', 'kavach.code': own.code, 'kavach.action': action }
                : { 'kavach.verdict': 'refuse', 'kavach.code': own.code },
            );
          }
          finishCall(span, serverDuration, started, common, result, error);
        },
      };
    },
  };
}

function upstreamCall(
  tracer: Tracer | undefined,
  propagator: W3CTraceContextPropagator,
  duration: Histogram | undefined,
  parent: Context,
  server: string,
  tool: string,
): UpstreamTrace {
  const started = performance.now();
  const label = toolLabel(tool);
  const common: Attributes = { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': label, 'gen_ai.operation.name': 'execute_tool' };
  const span: Span | undefined = tracer?.startSpan(
    `tools/call ${label}`,
    { kind: SpanKind.CLIENT, attributes: { ...common, 'kavach.server': server } },
    parent,
  );
  // The upstream continues this span's trace (an upstream that reads `_meta` joins it). Without a
  // tracer there is no span, and the client's own context passes on (as without telemetry).
  let meta: Record<string, string> | undefined;
  if (span) propagator.inject(trace.setSpan(parent, span), (meta = {}), metaSetter);
  return {
    meta,
    end(result, error) {
      finishCall(span, duration, started, common, result, error);
    },
  };
}

/** Records a call's duration and ends its span, both marked with the failure if there was one. */
function finishCall(
  span: Span | undefined,
  duration: Histogram | undefined,
  started: number,
  common: Attributes,
  result: CallToolResult | undefined,
  error: unknown,
): void {
  const failure = failureOf(result, error);
  duration?.record((performance.now() - started) / 1000, failure ? { ...common, 'error.type': failure.type } : common);
  if (!span) return;
  if (failure) {
    span.setAttribute('error.type', failure.type);
    if (failure.code !== undefined) span.setAttribute('rpc.response.status_code', failure.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
  }
  span.end();
}

/**
 * `error.type` as the conventions define it: the JSON-RPC error code when the request failed,
 * `tool_error` for a result with `isError` (a refusal is one), `_OTHER` for anything else thrown.
 */
function failureOf(result: CallToolResult | undefined, error: unknown): { type: string; code?: string; message: string } | undefined {
  if (error !== undefined) {
    const code = (error as { code?: unknown })?.code;
    const message = error instanceof Error ? error.message : String(error);
    return typeof code === 'number' ? { type: String(code), code: String(code), message } : { type: '_OTHER', message };
  }
  if (result?.isError === true) {
    const first = result.content?.[0];
    return { type: 'tool_error', message: first?.type === 'text' ? first.text.slice(0, 256) : 'tool error' };
  }
  return undefined;
}

// A record over the type: a code the proxy learns to give is counted, or this does not compile.
const PROXY_CODE_NAMES: Record<ProxyRefuseCode, true> = {
  TOOL_CHANGED: true,
  TOOL_SUSPECT: true,
  UPSTREAM_UNAVAILABLE: true,
  OUTPUT_BLOCKED: true,
  RATE_LIMITED: true,
};
const PROXY_CODES: ReadonlySet<string> = new Set(Object.keys(PROXY_CODE_NAMES));

/** The proxy's own refusal in a result (the gate's refusals are counted by the gate). */
function proxyRefusalOf(result: CallToolResult | undefined): { code: string; evaluationId: string } | undefined {
  const v = result?._meta?.[VERDICT_META_KEY] as { kind?: unknown; code?: unknown; evaluationId?: unknown } | undefined;
  if (v?.kind !== 'refuse' || typeof v.code !== 'string' || !PROXY_CODES.has(v.code) || typeof v.evaluationId !== 'string')
    return undefined;
  return { code: v.code, evaluationId: v.evaluationId };
}
