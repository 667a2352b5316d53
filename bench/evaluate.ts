/**
 * Evaluations per second and latency for a 100-policy set of mixed conditions, in-memory stores,
 * no signing, no audit. Then the same with OpenTelemetry on (an SDK tracer and meter, spans
 * batched to an exporter that drops them), alternated with telemetry off in one process so the
 * two are measured under the same load. KAVACH_BASELINE_DIST=<another build's dist/> adds that
 * build (e.g. main before telemetry) to the rotation: "off" against "before" is the cost of the
 * telemetry hook itself. Run: npx tsx bench/evaluate.ts
 */
import { pathToFileURL } from 'node:url';
import { Gate, type ActionContext, type GateOptions } from '../dist/index.js';
import { machine, percentile, printTable } from './util.ts';

export function hundredPolicies(): object {
  const policies: object[] = [];
  for (let i = 0; i < 100; i++) {
    const action = `tool_${i % 25}`;
    switch (i % 5) {
      case 0:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [
            { identity_kind: 'agent' },
            { action },
            { param_max: { field: 'amount', max: 1000 + i } },
            { param_in: { field: 'currency', values: ['EUR', 'USD', 'INR'] } },
          ],
        });
        break;
      case 1:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [
            { identity_role: 'ops' },
            { action: `${action}*` },
            { path_within: { field: '/file/path', roots: ['/srv/data', '/tmp/work'] } },
          ],
        });
        break;
      case 2:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [
            { action },
            { url_host_in: { field: 'url', hosts: ['api.example.com', '*.example.org'] } },
            { time_window: '00:00-24:00' },
          ],
        });
        break;
      case 3:
        policies.push({
          name: `p${i}`,
          effect: 'refuse',
          conditions: [
            { action },
            { any_of: [{ param_glob: { field: 'note', pattern: '*DROP TABLE*' } }, { param_max_length: { field: 'note', max: 10 } }] },
            { not: { identity_id: 'trusted-*' } },
          ],
        });
        break;
      default:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [{ identity_kind: ['agent', 'service'] }, { action }, { rate_limit: { max: 1_000_000_000, window: '1h' } }],
        });
    }
  }
  return { policies };
}

export function contexts(): ActionContext[] {
  const out: ActionContext[] = [];
  for (let i = 0; i < 64; i++) {
    out.push({
      principalId: `agent-${i % 8}`,
      principalKind: 'agent',
      roles: ['ops'],
      actionName: `tool_${i % 25}`,
      params: {
        amount: 10 * i,
        currency: i % 3 === 0 ? 'GBP' : 'EUR',
        file: { path: '/srv/data/report.csv' },
        url: 'https://api.example.com/v1',
        note: 'ok',
      },
      sessionId: `s-${i % 8}`,
      ip: '10.0.0.1',
    });
  }
  return out;
}

export async function benchEvaluate(
  iterations = 400_000,
  extra: GateOptions = {},
  GateClass: typeof Gate = Gate,
): Promise<{ perSecond: number; p50us: number; p99us: number; permits: number }> {
  // A synthetic clock, 100 ms per call: 8 sessions then see ~75 calls a minute each, a real
  // agent's pace, so drift runs its checks without tripping on the benchmark's own speed.
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = () => (now += 100);
  const gate = GateClass.fromDict(hundredPolicies(), { clock, drift: { maxSessionAge: false }, ...extra });
  const ctxs = contexts();
  for (let i = 0; i < 50_000; i++) await gate.evaluate(ctxs[i % ctxs.length] as ActionContext); // warm up
  let permits = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const v = await gate.evaluate(ctxs[i % ctxs.length] as ActionContext);
    if (v.kind === 'permit') permits++;
  }
  const elapsedNs = Number(process.hrtime.bigint() - start);
  const samples: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const t0 = process.hrtime.bigint();
    await gate.evaluate(ctxs[i % ctxs.length] as ActionContext);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  await gate.close();
  return {
    perSecond: Math.round(iterations / (elapsedNs / 1e9)),
    p50us: percentile(samples, 50),
    p99us: percentile(samples, 99),
    permits: permits / iterations,
  };
}

/** An SDK tracer (every span sampled, batched to an exporter that drops them) and an SDK meter. */
async function sdkTelemetry(): Promise<{ options: GateOptions; close: () => Promise<void> }> {
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics');
  class Reader extends MetricReader {
    protected async onForceFlush(): Promise<void> {}
    protected async onShutdown(): Promise<void> {}
  }
  const tracing = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor({ export: (_spans, done) => done({ code: 0 }), shutdown: async () => undefined })],
  });
  const metering = new MeterProvider({ readers: [new Reader()] });
  return {
    options: { telemetry: { tracer: tracing.getTracer('bench'), meter: metering.getMeter('bench') } },
    close: async () => {
      await tracing.shutdown();
      await metering.shutdown();
    },
  };
}

function median(values: number[]): number {
  return percentile(values, 50);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchEvaluate();
  printTable(`evaluate: 100 mixed policies, in-memory stores, no signing (${machine()})`, [
    ['evaluations/s (one core, sequential)', r.perSecond.toLocaleString('en-US')],
    ['latency p50', `${r.p50us.toFixed(2)} µs`],
    ['latency p99', `${r.p99us.toFixed(2)} µs`],
    ['share permitted', `${(r.permits * 100).toFixed(0)}%`],
  ]);

  const baselineDist = process.env.KAVACH_BASELINE_DIST;
  const Baseline = baselineDist
    ? ((await import(pathToFileURL(`${baselineDist.replace(/\/$/, '')}/index.js`).href)) as { Gate: typeof Gate }).Gate
    : undefined;
  const sdk = await sdkTelemetry();
  const variants: [string, () => ReturnType<typeof benchEvaluate>][] = [
    ['telemetry off', () => benchEvaluate(200_000)],
    ['telemetry on (SDK tracer + meter)', () => benchEvaluate(200_000, sdk.options)],
  ];
  if (Baseline) variants.unshift(['before telemetry (baseline build)', () => benchEvaluate(200_000, {}, Baseline)]);
  const runs = new Map<string, Awaited<ReturnType<typeof benchEvaluate>>[]>(variants.map(([name]) => [name, []]));
  // Alternated, five rounds: drift in the machine's load hits every variant alike.
  for (let round = 0; round < 5; round++) for (const [name, run] of variants) runs.get(name)?.push(await run());
  await sdk.close();
  const offRate = median((runs.get('telemetry off') ?? []).map((x) => x.perSecond));
  printTable(
    'telemetry off vs on (same process, alternated 5 rounds of 200,000 calls; medians)',
    variants.map(([name]) => {
      const xs = runs.get(name) ?? [];
      const rate = median(xs.map((x) => x.perSecond));
      return [
        name,
        `${rate.toLocaleString('en-US')}/s (${((rate / offRate) * 100).toFixed(1)}% of off), p50 ${median(xs.map((x) => x.p50us)).toFixed(2)} µs, p99 ${median(xs.map((x) => x.p99us)).toFixed(2)} µs`,
      ];
    }),
  );
}
