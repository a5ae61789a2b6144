/**
 * The gateway's metrics and traces, on `@opentelemetry/api` (docs/operations.md lists them).
 *
 * Nothing here runs unless the application registered an OpenTelemetry SDK before
 * `createGateway`: `gatewayTelemetry()` then returns undefined, and every hook in the gateway is
 * one `undefined` check. With an SDK, counters on hot paths (every message, every event) are
 * plain numbers read by observable instruments at collection time, so a streamed event costs
 * an increment, not an SDK call; only a handler's run records synchronously (its duration, and
 * its span).
 */
import {
  type Attributes,
  context,
  createNoopMeter,
  type Histogram,
  type Meter,
  metrics,
  type ObservableResult,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { ErrorCode, RpcError } from "../jsonrpc/errors.ts";
import type { Id } from "../jsonrpc/message.ts";
import type { ResumeResult } from "../jsonrpc/protocol.ts";
import type { SessionObserver } from "../sessions/observer.ts";
import { preview } from "./logger.ts";

/** The instrumentation scope of every meter and tracer here. */
const SCOPE = "switchboard";

/** Counts by attribute value, reported by an observable instrument under one attribute key. */
export class Tally<K extends string | number> {
  readonly #counts = new Map<K, number>();

  /** Counts one more of `key`. */
  add(key: K): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /** Reports every count to `result`, with `attribute` set to its key. */
  report(result: ObservableResult, attribute: string): void {
    for (const [key, count] of this.#counts) result.observe(count, { [attribute]: key });
  }
}

/** What a gateway shows of its current state, read at each collection. */
export interface GatewayGauges {
  /** Open connections. */
  readonly connections: number;
  /** Live sessions with a viewer and without, and open server → client requests. */
  sessions(): { attached: number; orphaned: number; requests: number };
  /** Bytes of events the in-memory store keeps for replay; undefined with another store. */
  readonly replayBytes: number | undefined;
}

/** How a server → client request ended (`switchboard.outcome` of `switchboard.server_requests`). */
type RequestOutcome = "answered" | "timeout" | "cancelled";

/** Why the guard or `open()` refused a connection: the reason label of `switchboard.connections.refused`. */
export type RefusalReason =
  | "shutdown"
  | "capacity"
  | "address_rate"
  | "address_capacity"
  | "bad_host"
  | "host"
  | "origin"
  | "token_protocol"
  | "unauthenticated"
  | "principal_capacity";

/** What a connection's messages are counted as (`switchboard.message.kind`). */
export type SentKind = "response" | "event" | "session";

/**
 * The process's telemetry: one per registered SDK, shared by every gateway created while it was
 * registered (so several gateways in one process add up instead of overwriting each other).
 */
export class Telemetry implements SessionObserver {
  /** Messages received, by kind: request, notification, response, invalid. */
  readonly received = new Tally<string>();
  /** Messages written, by kind: response, event (the connection's own), session (events and requests). */
  readonly sent = new Tally<SentKind>();
  /** UTF-16 units written (bytes for ASCII text): counting characters costs nothing, encoding would. */
  sentChars = 0;
  /** Error responses, by JSON-RPC error code. */
  readonly errors = new Tally<number>();
  /** Messages refused by the rate limit. */
  rateLimited = 0;
  /** Connections opened, including those closed at once (over a cap, shutting down). */
  opened = 0;
  /** Connections closed, by close code (sent by the gateway, or received from the peer). */
  readonly closed = new Tally<number>();
  /** Connections refused by the guard or at opening, by reason. */
  readonly refused = new Tally<RefusalReason>();
  /** Session events stamped with a seq. */
  eventsAppended = 0;
  /** `session.resume`s answered, by whether events were lost (`true`/`false`). */
  readonly resumes = new Tally<string>();
  /** Events replayed by those resumes. */
  replayed = 0;
  /** Server → client requests ended, by outcome. */
  readonly serverRequests = new Tally<RequestOutcome>();
  readonly #gateways = new Set<GatewayGauges>();
  readonly #duration: Histogram;
  readonly #tracer: Tracer | undefined;

  /** Instruments on `meter` (may be the no-op meter, with tracing only) and spans on `tracer`. */
  constructor(meter: Meter, tracer: Tracer | undefined) {
    this.#tracer = tracer;
    this.#duration = meter.createHistogram("rpc.server.duration", {
      description: "How long handlers took, by method and outcome.",
      unit: "ms",
      advice: { explicitBucketBoundaries: [0.1, 0.5, 1, 5, 10, 50, 100, 500, 1_000, 5_000, 30_000] },
    });
    const counter = (name: string, description: string, unit: string, report: (r: ObservableResult) => void) =>
      meter.createObservableCounter(name, { description, unit }).addCallback(report);
    const gauge = (name: string, description: string, unit: string, report: (r: ObservableResult) => void) =>
      meter.createObservableUpDownCounter(name, { description, unit }).addCallback(report);
    gauge("switchboard.connections.active", "Open connections.", "{connection}", (r) => {
      let open = 0;
      for (const gateway of this.#gateways) open += gateway.connections;
      r.observe(open);
    });
    counter(
      "switchboard.connections.opened",
      "Connections opened, including those closed at once.",
      "{connection}",
      (r) => r.observe(this.opened),
    );
    counter(
      "switchboard.connections.closed",
      "Connections closed, by close code.",
      "{connection}",
      (r) => this.closed.report(r, "switchboard.close.code"),
    );
    counter(
      "switchboard.connections.refused",
      "Connections refused before or at opening, by reason.",
      "{connection}",
      (r) => this.refused.report(r, "switchboard.refusal.reason"),
    );
    counter(
      "switchboard.messages.received",
      "JSON-RPC messages received, by kind.",
      "{message}",
      (r) => this.received.report(r, "switchboard.message.kind"),
    );
    counter(
      "switchboard.messages.sent",
      "JSON-RPC messages written, by kind.",
      "{message}",
      (r) => this.sent.report(r, "switchboard.message.kind"),
    );
    counter("switchboard.sent.size", "Characters written (bytes for ASCII).", "By", (r) => r.observe(this.sentChars));
    counter(
      "switchboard.errors",
      "Error responses, by JSON-RPC error code.",
      "{response}",
      (r) => this.errors.report(r, "rpc.jsonrpc.error_code"),
    );
    counter(
      "switchboard.rate_limited",
      "Messages refused by the per-connection rate limit.",
      "{message}",
      (r) => r.observe(this.rateLimited),
    );
    gauge("switchboard.sessions", "Live sessions, attached to a viewer or orphaned.", "{session}", (r) => {
      let attached = 0;
      let orphaned = 0;
      for (const gateway of this.#gateways) {
        const now = gateway.sessions();
        attached += now.attached;
        orphaned += now.orphaned;
      }
      r.observe(attached, { "switchboard.session.state": "attached" });
      r.observe(orphaned, { "switchboard.session.state": "orphaned" });
    });
    gauge("switchboard.session.replay.size", "Bytes of events kept for replay in memory.", "By", (r) => {
      let bytes: number | undefined;
      for (const gateway of this.#gateways) {
        if (gateway.replayBytes !== undefined) bytes = (bytes ?? 0) + gateway.replayBytes;
      }
      if (bytes !== undefined) r.observe(bytes);
    });
    counter("switchboard.session.events", "Session events appended.", "{event}", (r) => r.observe(this.eventsAppended));
    counter(
      "switchboard.session.resumes",
      "session.resume answered, by whether events were lost (truncated).",
      "{resume}",
      (r) => this.resumes.report(r, "switchboard.resume.truncated"),
    );
    counter("switchboard.session.replayed", "Events replayed by resumes.", "{event}", (r) => r.observe(this.replayed));
    gauge("switchboard.server_requests.active", "Server → client requests awaiting an answer.", "{request}", (r) => {
      let open = 0;
      for (const gateway of this.#gateways) open += gateway.sessions().requests;
      r.observe(open);
    });
    counter(
      "switchboard.server_requests",
      "Server → client requests ended, by outcome: answered, timeout, cancelled.",
      "{request}",
      (r) => this.serverRequests.report(r, "switchboard.outcome"),
    );
  }

  /** Counts `gateway` in the gauges until the returned function is called. */
  watch(gateway: GatewayGauges): () => void {
    this.#gateways.add(gateway);
    return () => this.#gateways.delete(gateway);
  }

  /** A connection wrote `text`, a message of `kind`. */
  wrote(kind: SentKind, text: string): void {
    this.sent.add(kind);
    this.sentChars += text.length;
  }

  /** A response was made: an error one if `error` is set; `text` is given when it is written alone (not in a batch). */
  answered(error: { code: number } | undefined, text: string | undefined): void {
    this.sent.add("response");
    if (error) this.errors.add(error.code);
    if (text !== undefined) this.sentChars += text.length;
  }

  /** A `session.resume` was answered: counted by whether it lost events, and its replayed events. */
  resumed(result: ResumeResult): void {
    this.resumes.add(String(result.truncated));
    this.replayed += result.replayed;
  }

  /**
   * Counts how a server → client request ends and, when tracing, spans it: a client span, the
   * child of the handler's span when it was sent from a handler (with a context manager
   * registered, as the Node SDK does).
   */
  requestOpened(id: string, method: string, answer: Promise<unknown>): void {
    const span = this.#tracer?.startSpan(method, {
      kind: SpanKind.CLIENT,
      attributes: { "rpc.system": "jsonrpc", "rpc.method": method, "rpc.jsonrpc.request_id": id },
    });
    const ended = (outcome: RequestOutcome, code?: number) => {
      this.serverRequests.add(outcome);
      if (!span) return;
      span.setAttribute("switchboard.outcome", outcome);
      if (code !== undefined) {
        span.setAttribute("rpc.jsonrpc.error_code", code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: `JSON-RPC error ${code}` });
      }
      span.end();
    };
    // Observing the answer marks its rejection handled: with telemetry on, a request whose
    // caller dropped the promise is not also reported as an unhandled rejection.
    answer.then(() => ended("answered"), (error: unknown) => {
      const code = error instanceof RpcError ? error.code : ErrorCode.InternalError;
      const reason = (error as { data?: { reason?: unknown } } | undefined)?.data?.reason;
      if (code !== ErrorCode.RequestCancelled || reason === undefined) ended("answered", code);
      else ended(reason === "timeout" ? "timeout" : "cancelled", code);
    });
  }

  /** A handler is about to run: its span (when tracing) and start time. */
  requestStarted(method: string, id: Id | undefined): RequestTrace {
    if (!this.#tracer) return new RequestTrace(this.#duration, method, undefined);
    const attributes: Attributes = { "rpc.system": "jsonrpc", "rpc.method": method, "rpc.jsonrpc.version": "2.0" };
    if (id !== undefined) attributes["rpc.jsonrpc.request_id"] = String(preview(id));
    return new RequestTrace(
      this.#duration,
      method,
      this.#tracer.startSpan(method, { kind: SpanKind.SERVER, attributes }),
    );
  }
}

/** One handler's run: ends its span and records its duration once it settles. */
export class RequestTrace {
  readonly #duration: Histogram;
  readonly #method: string;
  readonly #span: Span | undefined;
  readonly #started = performance.now();

  constructor(duration: Histogram, method: string, span: Span | undefined) {
    this.#duration = duration;
    this.#method = method;
    this.#span = span;
  }

  /** Runs `fn` with this request's span active, so spans the handler starts are its children. */
  run<T>(fn: () => T): T {
    if (!this.#span) return fn();
    return context.with(trace.setSpan(context.active(), this.#span), fn);
  }

  /** The handler settled: `error` is what it threw (undefined for a result). */
  end(error: unknown): void {
    const attributes: Attributes = { "rpc.system": "jsonrpc", "rpc.method": this.#method };
    if (error === undefined) attributes["switchboard.outcome"] = "ok";
    else {
      attributes["switchboard.outcome"] = "error";
      // As `answerError` answers it: an RpcError's own code, anything else -32603.
      attributes["rpc.jsonrpc.error_code"] = error instanceof RpcError ? error.code : ErrorCode.InternalError;
    }
    this.#duration.record(performance.now() - this.#started, attributes);
    const span = this.#span;
    if (!span) return;
    span.setAttributes(attributes);
    if (error !== undefined) {
      // The error's message may carry a client's input; the span keeps its code only.
      span.setStatus({ code: SpanStatusCode.ERROR, message: `JSON-RPC error ${attributes["rpc.jsonrpc.error_code"]}` });
    }
    span.end();
  }
}

/** The providers `cached` was made for, so gateways made under the same SDK share it. */
let cached: { meter: Meter; tracer: Tracer | undefined; telemetry: Telemetry } | undefined;

/**
 * The telemetry of a gateway created now: undefined when no OpenTelemetry SDK is registered
 * (neither a meter provider nor a tracer provider), so an uninstrumented gateway pays nothing.
 */
export function gatewayTelemetry(): Telemetry | undefined {
  const meter = metrics.getMeter(SCOPE);
  const tracer = registeredTracer(trace.getTracerProvider());
  const noMeter = meter === createNoopMeter();
  if (noMeter && !tracer) return undefined;
  if (cached?.meter !== meter || cached.tracer !== tracer) {
    cached = { meter, tracer, telemetry: new Telemetry(meter, tracer) };
  }
  return cached.telemetry;
}

/**
 * The registered tracer provider's tracer, or undefined without one. The global provider is a
 * proxy that hands out no-op spans until an SDK is registered behind it; asking the proxy for
 * its delegate's tracer tells the two apart (by shape: another copy of the API has its own class).
 */
function registeredTracer(provider: TracerProvider): Tracer | undefined {
  const proxy = provider as TracerProvider & { getDelegateTracer?(name: string): Tracer | undefined };
  return typeof proxy.getDelegateTracer === "function" ? proxy.getDelegateTracer(SCOPE) : provider.getTracer(SCOPE);
}

/** Ends a timed store operation: `failed` when it threw or was refused. */
export type StoreOperationEnd = (failed: boolean) => void;

/**
 * Times a store's operations on `switchboard.store.duration` (ms, by store and operation),
 * or undefined when no meter provider is registered: a store calls it once, when it is made,
 * then `start(operation)` before each round trip and the returned function after it.
 */
export function storeTimer(store: string): ((operation: string) => StoreOperationEnd) | undefined {
  const meter = metrics.getMeter(SCOPE);
  if (meter === createNoopMeter()) return undefined;
  const duration = meter.createHistogram("switchboard.store.duration", {
    description: "How long the session store's operations took, by store, operation and outcome.",
    unit: "ms",
    advice: { explicitBucketBoundaries: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1_000] },
  });
  return (operation) => {
    const started = performance.now();
    return (failed) =>
      duration.record(performance.now() - started, {
        "switchboard.store": store,
        "switchboard.store.operation": operation,
        "switchboard.outcome": failed ? "error" : "ok",
      });
  };
}
