import type { Meter, Tracer } from '@opentelemetry/api';
import { packageVersion } from '../cli/version.ts';
import { ConfigError } from '../engine/errors.ts';
import type { TelemetryConfig } from '../mcp-proxy/config.ts';

/**
 * The OpenTelemetry SDK behind the proxy's `[telemetry]` table: OTLP/HTTP exporters for traces and
 * metrics, a Prometheus `/metrics` endpoint. Every package is an optional peer dependency, imported
 * here only (runtime.ts imports this module only when the table is present). Nothing is registered
 * globally but the diagnostic logger: an embedding application keeps its own providers.
 */
export interface TelemetryRuntime {
  /** Present when spans are exported (`otlp_endpoint`). */
  tracer?: Tracer;
  meter: Meter;
  /** Where Prometheus scrapes, when it does. */
  metricsUrl?: string;
  /** Flushes what is buffered (the last spans, a final metric export) and stops the endpoint. */
  close(): Promise<void>;
}

const PACKAGES = [
  '@opentelemetry/api',
  '@opentelemetry/core',
  '@opentelemetry/resources',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/exporter-metrics-otlp-http',
  '@opentelemetry/exporter-prometheus',
];

async function load<T>(name: string, importer: () => Promise<T>): Promise<T> {
  try {
    return await importer();
  } catch (err) {
    throw new ConfigError(
      'telemetry',
      `[telemetry] needs the optional package ${name} (npm install ${PACKAGES.join(' ')}): ${(err as Error).message}`,
    );
  }
}

export async function startTelemetry(config: TelemetryConfig, log: (message: string) => void): Promise<TelemetryRuntime> {
  const api = await load('@opentelemetry/api', () => import('@opentelemetry/api'));
  const { resourceFromAttributes } = await load('@opentelemetry/resources', () => import('@opentelemetry/resources'));
  const metrics = await load('@opentelemetry/sdk-metrics', () => import('@opentelemetry/sdk-metrics'));
  // Export failures (a collector down) are worth a line on stderr, not silence and not a crash.
  api.diag.setLogger(
    {
      error: (message) => log(`telemetry: ${message}`),
      warn: (message) => log(`telemetry: ${message}`),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    api.DiagLogLevel.WARN,
  );
  const resource = resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': packageVersion() });
  const readers: InstanceType<typeof metrics.MetricReader>[] = [];
  const closers: (() => Promise<void>)[] = [];
  let tracer: Tracer | undefined;
  const headers = config.otlpHeaders;

  if (config.otlpEndpoint !== undefined) {
    const traces = await load('@opentelemetry/sdk-trace-base', () => import('@opentelemetry/sdk-trace-base'));
    const { OTLPTraceExporter } = await load(
      '@opentelemetry/exporter-trace-otlp-http',
      () => import('@opentelemetry/exporter-trace-otlp-http'),
    );
    const { OTLPMetricExporter } = await load(
      '@opentelemetry/exporter-metrics-otlp-http',
      () => import('@opentelemetry/exporter-metrics-otlp-http'),
    );
    const provider = new traces.BasicTracerProvider({
      resource,
      spanProcessors: [new traces.BatchSpanProcessor(new OTLPTraceExporter({ url: `${config.otlpEndpoint}/v1/traces`, headers }))],
    });
    tracer = provider.getTracer('kavach', packageVersion());
    closers.push(() => provider.shutdown());
    readers.push(
      new metrics.PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${config.otlpEndpoint}/v1/metrics`, headers }),
        exportIntervalMillis: config.exportIntervalMs,
        exportTimeoutMillis: Math.min(30_000, config.exportIntervalMs),
      }),
    );
  }

  let metricsUrl: string | undefined;
  if (config.prometheus !== undefined) {
    const { PrometheusExporter } = await load('@opentelemetry/exporter-prometheus', () => import('@opentelemetry/exporter-prometheus'));
    const { host, port } = config.prometheus;
    const exporter = new PrometheusExporter({ host, port, preventServerStart: true });
    try {
      await exporter.startServer();
    } catch (err) {
      for (const close of closers) await close().catch(() => undefined);
      throw new ConfigError('telemetry.prometheus', `cannot listen on ${host}:${port}: ${(err as Error).message}`);
    }
    readers.push(exporter);
    metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
    log(`telemetry: Prometheus metrics at ${metricsUrl}`);
  }

  const meterProvider = new metrics.MeterProvider({ resource, readers });
  // Shut down first so the final export happens while the exporters are still there.
  closers.unshift(() => meterProvider.shutdown());
  if (config.otlpEndpoint !== undefined) log(`telemetry: exporting traces and metrics to ${config.otlpEndpoint} (OTLP/HTTP)`);

  const runtime: TelemetryRuntime = {
    meter: meterProvider.getMeter('kavach', packageVersion()),
    async close() {
      for (const close of closers) await close().catch((err: unknown) => log(`telemetry: ${String(err)}`));
    },
  };
  if (tracer) runtime.tracer = tracer;
  if (metricsUrl) runtime.metricsUrl = metricsUrl;
  return runtime;
}
