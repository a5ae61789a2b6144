/**
 * `switchboard.ts` with an OpenTelemetry SDK registered first, as an application with metrics
 * and traces has it: a meter provider read by the Prometheus exporter (not scraped during a
 * run), a tracer provider batching every span to an exporter that drops them, and the
 * AsyncLocalStorage context manager. Against `switchboard`, it is the telemetry's cost.
 */
import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";

/** Accepts every batch and keeps nothing, so spans cost what the SDK spends on them and no more. */
const dropping: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: () => Promise.resolve(),
};

metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] }));
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
// Loaded now, so the gateway it makes sees the SDK.
await import("./switchboard.ts");
