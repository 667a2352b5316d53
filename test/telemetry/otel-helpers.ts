import { ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';
import { DataPointType, MeterProvider, MetricReader, type HistogramMetricData, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** Collects on demand: the test reads what a scrape would. */
class OnDemandReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** An SDK tracer whose finished spans land in memory, and a meter read on demand. */
export function otel() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    tracer: tracerProvider.getTracer('kavach-test'),
    meter: meterProvider.getMeter('kavach-test'),
    spans,
    finished: (name: string): ReadableSpan[] => spans.getFinishedSpans().filter((s) => s.name === name),
    async metrics(): Promise<MetricData[]> {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    },
    /** The value of a counter or gauge point with these attributes (undefined when none). */
    async value(name: string, attributes: Record<string, unknown> = {}): Promise<number | undefined> {
      const metric = (await this.metrics()).find((m) => m.descriptor.name === name);
      if (!metric || metric.dataPointType === DataPointType.HISTOGRAM) return undefined;
      const point = metric.dataPoints.find((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
      return point?.value as number | undefined;
    },
    async histogramCount(name: string): Promise<number> {
      const metric = (await this.metrics()).find((m) => m.descriptor.name === name) as HistogramMetricData | undefined;
      return metric?.dataPoints.reduce((n, p) => n + p.value.count, 0) ?? 0;
    },
    async close(): Promise<void> {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** A context whose active span is a remote parent with this trace and span id (what a traceparent gives). */
export function remoteParent(traceId: string, spanId: string): Context {
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: 1, isRemote: true });
}
