import { afterEach, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { proxyTelemetry } from '../../src/telemetry/proxy-telemetry.ts';
import { FakeUpstream, inProcessProxy, tool, type InProcessProxy } from '../mcp-proxy/in-process.ts';
import { otel } from './otel-helpers.ts';

const POLICY = `
[[policy]]
name = "reads"
effect = "permit"
conditions = [ { action = "fs.read" } ]

[[policy]]
name = "no-deletes"
effect = "refuse"
conditions = [ { action = "fs.delete" } ]
`;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

/** A tracestate no upstream should get: a header injection, and 20 KB. */
const EVIL_TRACESTATE = `a=b\r\nX-Evil: 1,${'c=d,'.repeat(5000)}`;

let proxy: InProcessProxy | undefined;
let o: ReturnType<typeof otel> | undefined;
afterEach(async () => {
  await proxy?.close();
  await o?.close();
  proxy = undefined;
});

async function traced(): Promise<{ p: InProcessProxy; o: ReturnType<typeof otel>; upstream: FakeUpstream }> {
  o = otel();
  const upstream = new FakeUpstream([tool('read'), tool('delete')]);
  const telemetry = { tracer: o.tracer, meter: o.meter };
  proxy = await inProcessProxy({
    policy: POLICY,
    upstreams: { fs: upstream },
    gateOptions: { drift: false, telemetry },
    telemetry: proxyTelemetry(telemetry),
  });
  return { p: proxy, o, upstream };
}

describe('proxy telemetry', () => {
  it('serves tools/call in a SERVER span continuing the client traceparent, with the MCP and GenAI attributes', async () => {
    const { p, o } = await traced();
    await p.client.callTool({ name: 'fs__read', arguments: { path: 'a' }, _meta: { traceparent: `00-${TRACE}-${PARENT}-01` } });
    const [server] = o.finished('tools/call fs__read');
    expect(server?.kind).toBe(SpanKind.SERVER);
    expect(server?.spanContext().traceId).toBe(TRACE);
    expect(server?.parentSpanContext?.spanId).toBe(PARENT);
    expect(server?.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'fs__read',
      'gen_ai.operation.name': 'execute_tool',
      'network.transport': 'pipe',
      'mcp.session.id': expect.any(String),
      'jsonrpc.request.id': expect.any(String),
      'kavach.verdict': 'permit',
      'kavach.action': 'fs.read',
    });
    expect(server?.attributes['error.type']).toBeUndefined();
    const [evaluate] = o.finished('kavach.evaluate');
    expect(evaluate?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(evaluate?.spanContext().traceId).toBe(TRACE);
  });

  it('calls the upstream in a CLIENT span and hands it that span as traceparent (tracestate kept)', async () => {
    const { p, o, upstream } = await traced();
    await p.client.callTool({
      name: 'fs__read',
      arguments: {},
      _meta: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'congo=t61rcWkgMzE' },
    });
    const [client] = o.finished('tools/call read');
    const [server] = o.finished('tools/call fs__read');
    expect(client?.kind).toBe(SpanKind.CLIENT);
    expect(client?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(client?.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'read', 'kavach.server': 'fs' });
    const meta = upstream.calls[0]?._meta;
    expect(meta?.traceparent).toBe(`00-${TRACE}-${client?.spanContext().spanId}-01`);
    expect(meta?.tracestate).toBe('congo=t61rcWkgMzE');
  });

  it('starts a trace of its own when the client sends none, and ignores a malformed traceparent', async () => {
    const { p, o } = await traced();
    await p.client.callTool({ name: 'fs__read', arguments: {} });
    await p.client.callTool({ name: 'fs__read', arguments: {}, _meta: { traceparent: '00-nothex-00f067aa0ba902b7-01' } });
    const spans = o.finished('tools/call fs__read');
    expect(spans).toHaveLength(2);
    for (const s of spans) {
      expect(s.parentSpanContext).toBeUndefined();
      expect(s.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('forwards only its own trace context: the client tracestate never rides with a traceparent the proxy made', async () => {
    const { p, o, upstream } = await traced();
    await p.client.callTool({
      name: 'fs__read',
      arguments: {},
      _meta: { traceparent: '00-nothex-00f067aa0ba902b7-01', tracestate: EVIL_TRACESTATE },
    });
    await p.client.callTool({ name: 'fs__read', arguments: {}, _meta: { traceparent: { x: 1 }, tracestate: ['congo=t61rcWkgMzE'] } });
    const clients = o.finished('tools/call read');
    expect(upstream.calls).toHaveLength(2);
    upstream.calls.forEach((call, i) => {
      const ctx = clients[i]?.spanContext();
      expect(call._meta?.traceparent).toBe(`00-${ctx?.traceId}-${ctx?.spanId}-01`);
      expect(call._meta).not.toHaveProperty('tracestate');
    });
  });

  it('reports a name that resolves to no tool as _OTHER: distinct unknown names make one series and no long span name', async () => {
    const { p, o } = await traced();
    for (let i = 0; i < 50; i++) {
      const r = await p.client.callTool({ name: `fs__${i}${'x'.repeat(20_000)}`, arguments: {} });
      expect(r.isError).toBe(true);
    }
    await p.client.callTool({ name: 'fs__read', arguments: {} });
    const metric = (await o.metrics()).find((m) => m.descriptor.name === 'mcp.server.operation.duration') as HistogramMetricData;
    const series = metric.dataPoints.map((d) => [d.attributes['gen_ai.tool.name'], d.value.count]);
    expect(series.sort()).toEqual([
      ['_OTHER', 50],
      ['fs__read', 1],
    ]);
    const servers = o.spans.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER);
    expect(servers.map((s) => s.name).sort()).toEqual([...Array<string>(50).fill('tools/call _OTHER'), 'tools/call fs__read']);
    for (const s of servers) expect(String(s.attributes['gen_ai.tool.name']).length).toBeLessThanOrEqual(128);
  });

  it('cuts a long upstream tool name to 128 characters in the client span and its metric', async () => {
    o = otel();
    const telemetry = { tracer: o.tracer, meter: o.meter };
    const upstream = new FakeUpstream([tool('r'.repeat(200))]);
    proxy = await inProcessProxy({
      policy: '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n',
      upstreams: { fs: upstream },
      gateOptions: { drift: false, telemetry },
      telemetry: proxyTelemetry(telemetry),
    });
    const [exposed] = (await proxy.client.listTools()).tools;
    const r = await proxy.client.callTool({ name: exposed?.name ?? '', arguments: {} });
    expect(r.isError).toBeFalsy();
    const cut = 'r'.repeat(128);
    expect(o.finished(`tools/call ${cut}`)).toHaveLength(1);
    const metric = (await o.metrics()).find((m) => m.descriptor.name === 'mcp.client.operation.duration') as HistogramMetricData;
    expect(metric.dataPoints.map((d) => d.attributes['gen_ai.tool.name'])).toEqual([cut]);
  });

  it('marks a refusal tool_error with its code, forwards nothing, and measures both calls', async () => {
    const { p, o, upstream } = await traced();
    const r = await p.client.callTool({ name: 'fs__delete', arguments: {} });
    expect(r.isError).toBe(true);
    const [server] = o.finished('tools/call fs__delete');
    expect(server?.attributes).toMatchObject({ 'error.type': 'tool_error', 'kavach.verdict': 'refuse', 'kavach.code': 'POLICY_DENIED' });
    expect(server?.status.code).toBe(SpanStatusCode.ERROR);
    expect(o.finished('tools/call delete')).toHaveLength(0);
    expect(upstream.calls).toHaveLength(0);
    await p.client.callTool({ name: 'fs__read', arguments: {} });
    expect(await o.histogramCount('mcp.server.operation.duration')).toBe(2);
    expect(await o.histogramCount('mcp.client.operation.duration')).toBe(1);
    expect(await o.value('kavach.verdicts', { 'kavach.code': 'POLICY_DENIED', 'kavach.action': 'fs.delete' })).toBe(1);
  });

  it("counts the proxy's own refusals in kavach.verdicts: a tool the definition scan holds (TOOL_SUSPECT)", async () => {
    o = otel();
    const telemetry = { tracer: o.tracer, meter: o.meter };
    const upstream = new FakeUpstream([tool('read')]);
    const finding = {
      source: 'tool' as const,
      field: '/description',
      kind: 'hidden_instructions' as const,
      count: 1,
      excerpt: '<IMPORTANT>',
    };
    const suspect = { reason: 'suspect' as const, findings: [finding] };
    proxy = await inProcessProxy({
      policy: POLICY,
      upstreams: { fs: upstream },
      pins: { load: async () => undefined, check: async () => new Map([['fs.read', suspect]]) },
      gateOptions: { drift: false, telemetry },
      telemetry: proxyTelemetry(telemetry),
    });
    const r = await proxy.client.callTool({ name: 'fs__read', arguments: {} });
    expect(r.isError).toBe(true);
    expect(upstream.calls).toHaveLength(0);
    expect(await o.value('kavach.verdicts', { 'kavach.code': 'TOOL_SUSPECT', 'kavach.action': 'fs.read' })).toBe(1);
  });

  it('leaves the client traceparent untouched when only metrics are configured', async () => {
    o = otel();
    const upstream = new FakeUpstream([tool('read')]);
    proxy = await inProcessProxy({
      policy: POLICY,
      upstreams: { fs: upstream },
      gateOptions: { drift: false, telemetry: { meter: o.meter } },
      telemetry: proxyTelemetry({ meter: o.meter }),
    });
    const meta = { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'congo=t61rcWkgMzE' };
    await proxy.client.callTool({ name: 'fs__read', arguments: {}, _meta: meta });
    expect(upstream.calls[0]?._meta).toEqual(meta);
    expect(await o.histogramCount('mcp.server.operation.duration')).toBe(1);
    // Passed on as they came, but only when they look like trace context.
    await proxy.client.callTool({
      name: 'fs__read',
      arguments: {},
      _meta: { traceparent: `${meta.traceparent}-${'x'.repeat(100)}`, tracestate: EVIL_TRACESTATE },
    });
    await proxy.client.callTool({ name: 'fs__read', arguments: {}, _meta: { traceparent: 7, tracestate: { a: 'b' } } });
    expect(upstream.calls.slice(1).map((c) => c._meta)).toEqual([undefined, undefined]);
  });
});
