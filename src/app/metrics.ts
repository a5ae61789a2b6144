/**
 * The app's `--metrics`: registers the OpenTelemetry SDK's meter provider, read by the
 * OpenTelemetry Prometheus exporter, and serves its text at `/metrics` on the app's own server,
 * behind the same token as the gateway. The SDK packages are optional peer dependencies of the
 * package: `main.ts` loads this module only when `--metrics` is given.
 */
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { Context, Handler } from "hono";

/** Prometheus's text exposition format. */
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Registers a meter provider whose only reader is a Prometheus exporter (call it before
 * `createGateway`: a gateway made earlier has no metrics). Returns the `/metrics` route's
 * handler, which answers 401 unless `principalOf` names a principal.
 */
export function registerMetrics(
  principalOf: (c: Context) => string | null | Promise<string | null>,
): Handler {
  // The exporter's own HTTP server is Node's; the app's server already runs on every runtime.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
  const serializer = new PrometheusSerializer();
  return async (c) => {
    if ((await principalOf(c)) === null) return c.text("unauthorized", 401);
    const { resourceMetrics } = await exporter.collect();
    return c.body(serializer.serialize(resourceMetrics), 200, { "content-type": CONTENT_TYPE });
  };
}
