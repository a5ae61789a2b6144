/**
 * `createGateway`: the method table, limits and connection registry shared by every
 * transport. A runtime's route and Hono's helpers end in `accept()`, stdio in `open()`.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { WSEvents } from "hono/ws";
import { CloseCode, type FrameSocket } from "../transport/transport.ts";
import { type GatewaySessions, type SessionOptions, SessionRegistry } from "../sessions/registry.ts";
import { MemoryStore } from "../sessions/store.ts";
import { PROTOCOL } from "../jsonrpc/protocol.ts";
import { ConnectionRegistry } from "./connections.ts";
import { atMost, Count } from "./waits.ts";
import { builtinMethods, type BuiltinName, RENAMEABLE_BUILTINS } from "./builtins.ts";
import { Connection, type ConnectionHost } from "./connection.ts";
import type { ConnectionHandle } from "./context.ts";
import { openRpcDocument } from "./discover.ts";
import { createGuard, createHandler, type GuardOptions } from "./hono.ts";
import { consoleLogger, type Logger } from "./logger.ts";
import { type MethodEntry, type MethodTable, toEntry } from "./method.ts";
import { gatewayTelemetry, type Telemetry } from "./telemetry.ts";

/** Per-connection and gateway-wide limits. Every field has a default. */
export interface Limits {
  /** Largest frame accepted, in bytes; larger closes the WebSocket with 1009. Default 1 MiB. */
  maxMessageBytes: number;
  /** Most messages in one batch; more answers -32600. Default 100. */
  maxBatch: number;
  /** Requests queued or running per connection; more answers -32003. Default 64. */
  maxInFlight: number;
  /** Open connections in total; more are refused with 503 by `guard()` (closed with 1013 if a burst got past it). Default 1024. */
  maxConnections: number;
  /** Open connections per authenticated principal (with `auth`); more are refused with 503. Default 64. */
  maxConnectionsPerPrincipal: number;
  /** Connection attempts per second per client address (a bucket of one second's worth); more are refused with 429 by `guard()`. Default 20. */
  connectsPerSecondPerAddress: number;
  /** Open connections per client address; more are refused with 503 by `guard()`. Default 64. */
  maxConnectionsPerAddress: number;
  /** Messages per second per connection (a token bucket of one second's worth); over it -32003, and a flood that goes on for another second's worth is closed 1008. Default 5,000. */
  messagesPerSecond: number;
  /** Deepest nesting of arrays/objects in params; deeper answers -32602 before any handler or schema sees it. Default 32. */
  maxParamsDepth: number;
  /** A peer heard from not at all (no frame, no pong) for about this long is closed (server pings or the runtime's idle timeout). Default 60 s. */
  peerTimeoutMs: number;
  /** Backlog at which a slow consumer is logged (once per episode). Default 1 MiB. */
  backlogWarnBytes: number;
  /** Backlog at which a slow consumer is cut with 1013. Default 8 MiB. */
  maxBacklogBytes: number;
  /** A socket that has not drained at all for this long is closed with 1011. Default 30 s. */
  sendStallMs: number;
}

/** The limits a gateway runs with where its `limits` option leaves a field out (each one's default is on `Limits`). */
export const defaultLimits: Readonly<Limits> = {
  maxMessageBytes: 1 << 20,
  maxBatch: 100,
  maxInFlight: 64,
  maxConnections: 1024,
  maxConnectionsPerPrincipal: 64,
  connectsPerSecondPerAddress: 20,
  maxConnectionsPerAddress: 64,
  messagesPerSecond: 5_000,
  maxParamsDepth: 32,
  peerTimeoutMs: 60_000,
  backlogWarnBytes: 1 << 20,
  maxBacklogBytes: 8 << 20,
  sendStallMs: 30_000,
};

/** A task started once per gateway at its first connection; its result is not awaited. */
export type StartupTask = () => unknown;

/** Options of `createGateway`. */
export interface GatewayOptions<M extends MethodTable> {
  /** Shown in `rpc.discover` and logs. Default "switchboard". */
  name?: string;
  /** Shown in `rpc.discover`. Default "0.0.0". */
  version?: string;
  /**
   * The application's methods by name. `createGateway` throws for a name in `rpc.*` or one the
   * built-ins answer (`gateway.ping`, `session.resume`, `session.events.since`, `session.close`,
   * unless `builtins` renames or drops them).
   */
  methods: M;
  /**
   * Renames (a new name) or drops (`false`) built-in methods, e.g. to speak another protocol in
   * which `session.resume` means something else: `{ "session.resume": "switchboard.session.resume" }`.
   * The freed name is then the application's to define.
   */
  builtins?: Partial<Record<BuiltinName, string | false>>;
  /**
   * Error codes to renumber on the wire, e.g. `{ [-32001]: 4001 }` for clients that know a
   * session not found by another code. Handlers see the original codes; metrics count those sent.
   */
  errorCodes?: Record<number, number>;
  /**
   * Each connection's `capabilities` when it opens (a copy); handlers may change them. The
   * gateway reads `serverRequests`: a connection where it is `false` gets no server → client
   * requests. Default `{}` (every connection takes them).
   */
  capabilities?: Record<string, unknown>;
  /**
   * Extra fields merged into each connection's `gateway.ready` payload (synchronous); `base`
   * holds the protocol's own fields (`epoch`, `heartbeat_ms`…).
   */
  ready?: (connection: ConnectionHandle, base: Readonly<Record<string, unknown>>) => Record<string, unknown>;
  /** Started once, at the first connection, before its `gateway.ready`; never awaited; failures are logged. */
  startup?: StartupTask[];
  /** Limits to change; the fields left out keep their `defaultLimits` value. */
  limits?: Partial<Limits>;
  /** How often clients should send `gateway.ping`, announced in `gateway.ready`. Default 15 s. */
  heartbeatMs?: number;
  /** Where logs go. Default: `consoleLogger("info")` (stderr). */
  logger?: Logger;
  /** Session rules: grace period, replay bounds, caps, orphan policy, hooks, store. */
  sessions?: SessionOptions;
  /**
   * Who is connecting, decided in `guard()` before the upgrade: a principal (sessions belong
   * to it), or null to refuse with 401. Default: everyone is "anonymous".
   */
  auth?: (c: Context) => string | null | Promise<string | null>;
  /**
   * Browser origins allowed besides the page's own (same-origin), e.g. `["https://app.example"]`.
   * A request with another `Origin` gets 403 before the upgrade; one without `Origin` (not a browser) passes.
   */
  origins?: string[];
  /**
   * Apply the per-address limits (`connectsPerSecondPerAddress`, `maxConnectionsPerAddress`) to
   * loopback peers too. Default false: on loopback every client has the same address (your own
   * browser tabs, or every user behind a reverse proxy on the same machine).
   */
  limitLoopback?: boolean;
}

/** Options of `gateway.close()`. */
export interface CloseOptions {
  /** How long to wait, in all, for clients to finish the close handshake and handlers to finish. Default 5 s. */
  timeoutMs?: number;
}

/** A gateway: mount `handler` behind `guard()` in a Hono app, or serve it with a runtime's `serve()`. */
export interface Gateway<M extends MethodTable = MethodTable> {
  /** As given in the options (default "switchboard"): shown in `rpc.discover` and logs. */
  readonly name: string;
  /**
   * Random per gateway (with a shared store: the store's, the same on every node); a client that
   * sees it change knows its sequence numbers are void.
   */
  readonly epoch: string;
  /** The limits in force: the defaults with the options' `limits` over them. */
  readonly limits: Readonly<Limits>;
  /** The logger given in the options, or the default one. */
  readonly log: Logger;
  /** The method table as given (also carries its types for a typed client). */
  readonly methods: M;
  /** Open connections. */
  readonly connections: ReadonlySet<ConnectionHandle>;
  /** Live sessions, for application code outside handlers. */
  readonly sessions: GatewaySessions;
  /** For `upgradeWebSocket(gateway.handler)` with any Hono WebSocket helper. */
  readonly handler: (c: Context) => WSEvents;
  /**
   * Middleware to place before the upgrade: 503 after `close()` or over the connection caps,
   * 403 for a foreign `Origin` or (with `hosts`) a `Host` not on the list, 401 when `auth` refuses.
   */
  guard(options?: GuardOptions): MiddlewareHandler;
  /** Open connections of `principal`. */
  connectionsOf(principal: string): number;
  /**
   * Stops accepting, closes every connection with 1001 (their sessions detach), waits for
   * them to go and for running handlers to finish (both within `timeoutMs`), then ends every
   * session with reason `shutdown`, which aborts the handlers still bound to one.
   */
  close(options?: CloseOptions): Promise<void>;
  /** True once `close()` was called. */
  readonly closing: boolean;
}

/** What the runtime modules and stdio use of a gateway beyond its public face. */
export interface GatewayCore<M extends MethodTable = MethodTable> extends Gateway<M> {
  readonly connections: ReadonlySet<Connection>;
  readonly sessions: SessionRegistry;
  /** Opens a connection over `socket` for `principal` (default "anonymous") and sends `gateway.ready`. */
  open(socket: FrameSocket, peer: string, principal?: string): Connection;
  /**
   * Opens a connection for an upgrade `guard()` admitted as `principal` (see `principalOf`). With
   * `auth`, one without a principal came by a route mounted without the guard: closed 1008.
   */
  accept(principal: string | undefined, socket: FrameSocket, peer: string): void;
  /** Counts a connection attempt from `address`; the HTTP status refusing it (429, 503), or undefined. */
  admitAddress(address: string): 429 | 503 | undefined;
  /** Metrics and traces, when an OpenTelemetry SDK was registered before `createGateway`. */
  readonly telemetry: Telemetry | undefined;
}

/** The core of a gateway made by `createGateway` (every gateway is). */
export function gatewayCore<M extends MethodTable>(gateway: Gateway<M>): GatewayCore<M> {
  return gateway as GatewayCore<M>;
}

const RESERVED = /^rpc\./;

/** The principal of every connection when the gateway has no `auth`. */
export const ANONYMOUS = "anonymous";

/**
 * Creates a gateway from a method table.
 *
 * @example Mount it in your own Hono app (here on Deno, with Hono's helper)
 * ```ts
 * import { Hono } from "hono";
 * import { upgradeWebSocket } from "hono/deno";
 * import { createGateway, LOOPBACK_HOSTS } from "switchboard";
 *
 * const gateway = createGateway({ methods: { "math.add": ([a, b]: [number, number]) => a + b } });
 * const app = new Hono();
 * app.get("/api/ws", gateway.guard({ hosts: LOOPBACK_HOSTS }), upgradeWebSocket(gateway.handler));
 * Deno.serve({ hostname: "127.0.0.1", port: 8787 }, app.fetch);
 * ```
 */
export function createGateway<M extends MethodTable>(options: GatewayOptions<M>): Gateway<M> {
  const name = options.name ?? "switchboard";
  const limits: Readonly<Limits> = Object.freeze({ ...defaultLimits, ...options.limits });
  const log = options.logger ?? consoleLogger("info");
  const epoch = crypto.randomUUID();
  const connections = new ConnectionRegistry(limits, options.limitLoopback ?? false);
  const telemetry = gatewayTelemetry();
  const sessions = new SessionRegistry(
    options.sessions ?? {},
    epoch,
    (message, fields) => log.error(message, fields),
    telemetry,
  );
  // Asynchronous handlers running across the gateway, even past their connection's teardown.
  const handlers = new Count();
  const startOnce = once(() => runStartup(options.startup ?? [], log));
  const ready = readyPayload(options, limits, () => sessions.epoch);
  let closing = false;
  const unwatch = telemetry?.watch({
    get connections() {
      return connections.open.size;
    },
    sessions: () => sessions.gauges(),
    get replayBytes() {
      return sessions.store instanceof MemoryStore ? sessions.store.bytes : undefined;
    },
  });

  const host: ConnectionHost = {
    methods: methodTable(name, options),
    errorCodes: options.errorCodes &&
      new Map(Object.entries(options.errorCodes).map(([from, to]) => [Number(from), to])),
    capabilities: options.capabilities ?? {},
    limits,
    backlog: { warnBytes: limits.backlogWarnBytes, maxBytes: limits.maxBacklogBytes, stallMs: limits.sendStallMs },
    log,
    sessions,
    telemetry,
    handlerStarted: () => handlers.up(),
    handlerFinished: () => handlers.down(),
    release: (connection) => connections.release(connection),
  };

  const gateway: GatewayCore<M> = {
    name,
    get epoch() {
      return sessions.epoch;
    },
    limits,
    log,
    methods: options.methods,
    connections: connections.open,
    sessions,
    get closing() {
      return closing;
    },
    handler: createHandler(() => gateway),
    guard: (guardOptions) => createGuard(gateway, { auth: options.auth, origins: options.origins, ...guardOptions }),
    connectionsOf: (principal) => connections.of(principal),
    admitAddress: (address) => connections.admitAddress(address),
    telemetry,

    open(socket, peer, principal = ANONYMOUS) {
      // guard() checks before the upgrade, but upgrades it let through may open together
      // (Deno opens them only after answering them all), so the cap and shutdown hold here too.
      const refused = closing ? "shutdown" : connections.open.size >= limits.maxConnections ||
          (options.auth && connections.of(principal) >= limits.maxConnectionsPerPrincipal)
        ? "too_many_connections"
        : undefined;
      if (!refused) startOnce();
      const connection = new Connection(host, socket, peer, principal);
      connections.add(connection);
      // Every connection counts, even one closed at once: opened − closed is what is open.
      if (telemetry) telemetry.opened++;
      if (refused) {
        telemetry?.refused.add(refused === "shutdown" ? "shutdown" : "capacity");
        log.warn("connection refused", { peer, reason: refused });
        connection.close(refused === "shutdown" ? CloseCode.GoingAway : CloseCode.TryAgainLater, refused);
        return connection;
      }
      let payload: Record<string, unknown>;
      try {
        payload = ready(connection);
      } catch (error) {
        log.error("ready hook failed", { peer, error });
        connection.close(CloseCode.Internal, "ready_failed");
        return connection;
      }
      connection.emit("gateway.ready", payload);
      return connection;
    },

    accept(principal, socket, peer) {
      if (principal === undefined && options.auth) {
        telemetry?.refused.add("unauthenticated");
        log.warn("connection refused", { peer, reason: "unauthenticated" });
        socket.close(CloseCode.Policy, "unauthenticated");
        return;
      }
      gateway.open(socket, peer, principal);
    },

    async close({ timeoutMs = 5_000 } = {}) {
      closing = true;
      const deadline = Date.now() + timeoutMs;
      await connections.closeAll(timeoutMs);
      // Handlers bound to sessions outlive their connections: give them until the deadline.
      await atMost(handlers.zero(), deadline - Date.now());
      await sessions.shutdown();
      unwatch?.();
    },
  };
  return gateway;
}

/** The dispatcher's method table: the built-ins, then the gateway's own (which may not take a reserved name). */
function methodTable(name: string, options: GatewayOptions<MethodTable>): Map<string, MethodEntry> {
  // A Map, so a method name can never reach a prototype member (`__proto__`, `toString`).
  const methods = new Map<string, MethodEntry>();
  const discover = once(() => openRpcDocument(name, options.version ?? "0.0.0", methods.values()));
  const renames: Partial<Record<string, string | false>> = options.builtins ?? {};
  for (const key of Object.keys(renames)) {
    if (!RENAMEABLE_BUILTINS.has(key)) throw new Error(`"${key}" is not a built-in that can be renamed or dropped`);
  }
  for (const entry of builtinMethods(discover)) {
    const name = renames[entry.name] ?? entry.name;
    if (name === false) continue;
    // Whichever of two built-ins comes second finds the name taken.
    if (methods.has(name) || (name !== entry.name && RESERVED.test(name))) {
      throw new Error(`built-in ${entry.name} cannot be named "${name}": the name is taken`);
    }
    methods.set(name, { ...entry, name });
  }
  for (const key of Object.keys(options.methods)) {
    if (RESERVED.test(key) || methods.has(key)) {
      throw new Error(`method name "${key}" is reserved (rpc.* and the built-ins in use)`);
    }
    methods.set(key, toEntry(key, options.methods[key]!));
  }
  return methods;
}

/** Builds each connection's `gateway.ready` payload: the protocol's fields, then the `ready` option's (which may throw). */
function readyPayload(
  options: GatewayOptions<MethodTable>,
  limits: Readonly<Limits>,
  epoch: () => string,
): (connection: ConnectionHandle) => Record<string, unknown> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const readyLimits = {
    max_message_bytes: limits.maxMessageBytes,
    max_batch: limits.maxBatch,
    max_in_flight: limits.maxInFlight,
  };
  return (connection) => {
    const base = {
      protocol: PROTOCOL,
      connection_id: connection.id,
      epoch: epoch(),
      heartbeat_ms: heartbeatMs,
      limits: readyLimits,
    };
    return options.ready ? { ...base, ...options.ready(connection, base) } : base;
  };
}

/** Starts every startup task, never awaiting one; a failure is logged. */
function runStartup(tasks: StartupTask[], log: Logger): void {
  for (const task of tasks) {
    const failed = (error: unknown) => log.error("startup task failed", { task: task.name, error });
    try {
      const result = task();
      if (result instanceof Promise) result.catch(failed);
    } catch (error) {
      failed(error);
    }
  }
}

/** `run` on the first call only; later calls return its first result. */
function once<T>(run: () => T): () => T {
  let done = false;
  let result: T;
  return () => {
    if (!done) {
      result = run();
      done = true;
    }
    return result;
  };
}
