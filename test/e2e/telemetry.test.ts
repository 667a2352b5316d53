import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FIXTURE,
  REPO,
  cleanup,
  q,
  read,
  runCli,
  startProxy,
  tempDir,
  textOf,
  waitFor,
  write,
  type RunningProxy,
} from './proxy-harness.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const POLICY = `
[[policy]]
name = "meta"
effect = "permit"
conditions = [{ action = "fx.meta" }]

[[policy]]
name = "no-pid"
effect = "refuse"
conditions = [{ action = "fx.pid" }]
`;

let dir: string | undefined;
let proxy: RunningProxy | undefined;
const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  for (const stop of stops.splice(0).reverse()) await stop();
  cleanup(dir);
  dir = undefined;
});

/** A config whose only upstream is the fixture server (its `meta` tool echoes the `_meta` it got). */
function configWith(telemetry: string, extra = ''): string {
  dir = tempDir('kavach-otel-e2e-');
  write(join(dir, 'policy.toml'), POLICY);
  return write(
    join(dir, 'kavach.toml'),
    `
[gate]
policy = "policy.toml"

[identity]
principal_id = "alice-laptop"
principal_kind = "agent"

[servers.fx]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
${extra}
[telemetry]
${telemetry}
`,
  );
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; boolValue?: boolean };
}
interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: OtlpAttribute[];
}

const attrs = (list: OtlpAttribute[] | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue]));

/** An OTLP/HTTP receiver (JSON encoding, what the exporters send by default): keeps every body it gets. */
async function otlpReceiver(): Promise<{ url: string; traces: unknown[]; metrics: unknown[]; contentTypes: Set<string> }> {
  const got = { traces: [] as unknown[], metrics: [] as unknown[], contentTypes: new Set<string>() };
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (req.url === '/v1/traces') got.traces.push(body);
      else if (req.url === '/v1/metrics') got.metrics.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, ...got };
}

function spansIn(bodies: unknown[]): OtlpSpan[] {
  return (bodies as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }[]).flatMap((b) =>
    b.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
  );
}

describe('kavach mcp [telemetry]', () => {
  it('exports spans and metrics over OTLP/HTTP: the client trace continued, the upstream handed its child, the audit record carrying the trace id', async () => {
    const receiver = await otlpReceiver();
    const config = configWith(
      `otlp_endpoint = ${q(receiver.url)}\nservice_name = "kavach-e2e"\nexport_interval = "200ms"\n`,
      '[keys]\npath = "keys/secret.key"\n[audit]\npath = "audit/mcp.jsonl"\n',
    );
    const keygen = await runCli(['keygen', '--out', join(dir as string, 'keys')]);
    expect(keygen.code).toBe(0);
    proxy = await startProxy(config);
    const permitted = await proxy.client.callTool({
      name: 'fx__meta',
      arguments: {},
      _meta: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'congo=t61rcWkgMzE' },
    });
    const refused = await proxy.client.callTool({ name: 'fx__pid', arguments: {} });
    expect(refused.isError).toBe(true);
    const upstreamMeta = JSON.parse(textOf(permitted)) as Record<string, unknown>;
    await proxy.close(); // stdin closes: the proxy shuts down and flushes what it holds
    proxy = undefined;

    const spans = await waitFor(
      'the spans to arrive',
      () => {
        const s = spansIn(receiver.traces);
        return s.some((x) => x.name === 'tools/call fx__pid') && s.some((x) => x.name === 'tools/call meta') ? s : undefined;
      },
      30_000,
    );
    const server = spans.find((s) => s.name === 'tools/call fx__meta') as OtlpSpan;
    const client = spans.find((s) => s.name === 'tools/call meta') as OtlpSpan;
    const evaluate = spans.find((s) => s.name === 'kavach.evaluate' && s.traceId === TRACE) as OtlpSpan;
    expect(server.traceId).toBe(TRACE);
    expect(server.parentSpanId).toBe(PARENT);
    expect(server.kind).toBe(2); // SERVER in OTLP's numbering
    expect(attrs(server.attributes)).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'fx__meta',
      'gen_ai.operation.name': 'execute_tool',
      'network.transport': 'pipe',
      'kavach.verdict': 'permit',
    });
    expect(evaluate.parentSpanId).toBe(server.spanId);
    expect(client.kind).toBe(3); // CLIENT
    expect(client.parentSpanId).toBe(server.spanId);
    // What the upstream received: the proxy's client span as its parent, the client's tracestate kept.
    expect(upstreamMeta.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`);
    expect(upstreamMeta.tracestate).toBe('congo=t61rcWkgMzE');
    const refusal = spans.find((s) => s.name === 'tools/call fx__pid') as OtlpSpan;
    expect(attrs(refusal.attributes)).toMatchObject({ 'error.type': 'tool_error', 'kavach.code': 'POLICY_DENIED' });

    const resource = (receiver.traces[0] as { resourceSpans: { resource: { attributes: OtlpAttribute[] } }[] }).resourceSpans[0]?.resource;
    expect(attrs(resource?.attributes)['service.name']).toBe('kavach-e2e');
    expect([...receiver.contentTypes]).toContain('application/json');

    const metricNames = new Set(
      (receiver.metrics as { resourceMetrics: { scopeMetrics: { metrics: { name: string }[] }[] }[] }[]).flatMap((b) =>
        b.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.name))),
      ),
    );
    for (const name of [
      'kavach.verdicts',
      'kavach.evaluate.duration',
      'kavach.permit.sign.duration',
      'kavach.audit.commit.duration',
      'mcp.server.operation.duration',
    ])
      expect(metricNames).toContain(name);

    const records = read(join(dir as string, 'audit/mcp.jsonl'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const verdict = records.find((r) => r.type === 'verdict' && r.action === 'fx.meta');
    const outcome = records.find((r) => r.type === 'outcome' && r.evaluationId === verdict?.evaluationId);
    expect(verdict?.traceId).toBe(TRACE);
    expect(outcome?.traceId).toBe(TRACE);
    const verify = await runCli([
      'audit',
      'verify',
      join(dir as string, 'audit/mcp.jsonl'),
      '--keys',
      join(dir as string, 'keys/public.json'),
    ]);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);
  }, 90_000);

  const prometheusBinary = spawnSync('prometheus', ['--version'], { encoding: 'utf8' }).status === 0;
  // Outside CI a machine without Prometheus skips; in CI (.ci/run installs it) its absence fails.
  const skip = !prometheusBinary && !process.env.CI;

  it.skipIf(skip)(
    'is scraped by a real Prometheus: kavach_verdicts_total read back through its query API',
    async () => {
      expect(prometheusBinary, 'the prometheus binary (Debian package prometheus) is required in CI').toBe(true);
      const metricsPort = await freePort();
      const config = configWith(`prometheus = "127.0.0.1:${metricsPort}"\n`);
      proxy = await startProxy(config);
      expect(proxy.stderr()).toContain(`Prometheus metrics at http://127.0.0.1:${metricsPort}/metrics`);
      for (let i = 0; i < 3; i++) expect((await proxy.client.callTool({ name: 'fx__pid', arguments: {} })).isError).toBe(true);
      await proxy.client.callTool({ name: 'fx__meta', arguments: {} });

      const base = dir as string;
      const storage = join(base, 'prom-data');
      mkdirSync(storage);
      const promConfig = write(
        join(base, 'prometheus.yml'),
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: kavach\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['127.0.0.1:${metricsPort}']\n`,
      );
      const promPort = await freePort();
      const prom: ChildProcess = spawn(
        'prometheus',
        [`--config.file=${promConfig}`, `--storage.tsdb.path=${storage}`, `--web.listen-address=127.0.0.1:${promPort}`],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let promLog = '';
      prom.stderr?.on('data', (c: Buffer) => (promLog += c.toString()));
      stops.push(async () => {
        if (prom.exitCode === null && prom.signalCode === null) {
          prom.kill('SIGTERM');
          await new Promise((r) => prom.once('exit', r));
        }
      });
      const api = `http://127.0.0.1:${promPort}`;
      await waitFor(`prometheus to be ready (${promLog.slice(-500)})`, async () => (await fetch(`${api}/-/ready`)).ok || undefined, 30_000);
      const query = async (promql: string) => {
        const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const body = (await res.json()) as {
          status: string;
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
        expect(body.status).toBe('success');
        return body.data.result;
      };
      const denied = await waitFor(
        'Prometheus to scrape kavach_verdicts_total',
        async () => {
          const r = await query('kavach_verdicts_total{kavach_code="POLICY_DENIED"}');
          return r.length > 0 && r[0]?.value[1] === '3' ? r : undefined;
        },
        45_000,
      );
      expect(denied[0]?.metric).toMatchObject({ job: 'kavach', kavach_verdict: 'refuse', kavach_action: 'fx.pid' });
      const permits = await query('sum(kavach_verdicts_total{kavach_verdict="permit"})');
      expect(permits[0]?.value[1]).toBe('1');
      // Every query docs/observability.md offers for dashboards is valid PromQL over what is scraped.
      const documented = [...read(join(REPO, 'docs/observability.md')).matchAll(/```promql\n([\s\S]*?)```/g)].map(
        (m) => m[1]?.trim() ?? '',
      );
      expect(documented.length).toBeGreaterThanOrEqual(8);
      for (const promql of documented) await query(promql);
      // The first is the refusal rate by code: refusals made while Prometheus is scraping show in it.
      for (let i = 0; i < 2; i++) await proxy.client.callTool({ name: 'fx__pid', arguments: {} });
      const refusalRate = await waitFor(
        'a refusal rate above zero',
        async () => (await query(documented[0] as string)).find((x) => x.metric.kavach_code === 'POLICY_DENIED' && Number(x.value[1]) > 0),
        30_000,
      );
      expect(Number(refusalRate.value[1])).toBeGreaterThan(0);
      const pending = await query('kavach_approvals_pending');
      expect(pending[0]?.value[1]).toBe('0');
    },
    120_000,
  );
});
