/**
 * `switchboard/redis`: sessions shared by several gateway nodes, on Redis (docs/guide.md,
 * Several nodes). Events live in a Redis stream per session, appended by one Lua script that
 * checks the owner's fence and the seq, trims, and publishes; each node subscribes to the
 * channels of the sessions it views.
 *
 * It uses the `redis` package (node-redis), which runs unchanged on Node, Deno and Bun; it is
 * an optional peer dependency of Switchboard: install it beside it to use this entry.
 *
 * @module
 */
import { createClient, type RedisClientType } from "redis";
import type { ReplayLimits } from "../sessions/store.ts";
import type {
  Acquired,
  Appended,
  NodeMessage,
  SessionMessage,
  SharedRead,
  SharedStore,
  StoredSession,
} from "../sessions/shared-store.ts";
import { sessionEventFromTail, sessionEventPrefix, sessionEventTail } from "../jsonrpc/message.ts";
import { randomId } from "../sessions/session.ts";
import * as scripts from "./redis-scripts.ts";
import { storeTimer } from "../gateway/telemetry.ts";

/** Each script's name (`append`, `read`, …): the `switchboard.store.operation` of its round trips. */
const OPERATIONS = new Map<string, string>(Object.entries(scripts).map(([name, text]) => [text, name.toLowerCase()]));

/** Options of `redisStore()`. */
export interface RedisStoreOptions {
  /** The Redis server, e.g. `redis://127.0.0.1:6379`. */
  url: string;
  /** Prefix of every key and channel, so several gateways can share one Redis. Default "switchboard". */
  prefix?: string;
  /** How long a node's lease on a session lasts without renewal (renewed every third of it). Default 3 s. */
  leaseMs?: number;
  /** A session with no viewer on any node and no work expires after this long. Default 20 s; 0 keeps it. */
  graceMs?: number;
  /** Per-session bounds of the kept events. Default 512 events, 4 MiB. */
  replay?: Partial<ReplayLimits>;
  /** How long the first connection may take before `redisStore()` fails. Default 5 s. */
  connectTimeoutMs?: number;
}

/** Stream entries read per round trip (each holds one append's events; the kept ones fit in one page by default). */
const PAGE = 512;

/** Sessions kept in a principal's index (the newest), and how long the index outlives its last new session. */
const LIST_KEPT = 1_000;
const INDEX_TTL_MS = 7 * 24 * 60 * 60_000;

/**
 * Connects to Redis and resolves with a store for `createGateway({ sessions: { store } })`;
 * rejects with a one-line error if Redis cannot be reached. The gateway closes it on close.
 *
 * @example
 * ```ts
 * import { createGateway } from "switchboard";
 * import { redisStore } from "switchboard/redis";
 *
 * const store = await redisStore({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" });
 * const gateway = createGateway({ methods: {}, sessions: { store } });
 * ```
 */
export async function redisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const store = new RedisStore(options);
  await store.connect();
  return store;
}

/** A `SharedStore` on Redis; made by `redisStore()`. */
export class RedisStore implements SharedStore {
  readonly shared = true as const;
  readonly node: string = randomId();
  readonly leaseMs: number;
  /** How long a session with no viewer on any node and no work is kept (0: until closed). */
  readonly graceMs: number;
  readonly replay: ReplayLimits;
  epoch = "";
  onNodeMessage: (message: NodeMessage) => void = () => {};
  onRecovered: () => void = () => {};
  /** Told when Redis goes away or comes back (the gateway logs it). */
  onTrouble: (message: string, fields: Record<string, unknown>) => void = () => {};
  #url: string;
  #prefix: string;
  #connectTimeoutMs: number;
  #client: RedisClientType;
  #subscriber: RedisClientType;
  #connected = false;
  /** The connections (of `#client`, `#subscriber`) that lost Redis and are not back yet. */
  #down = new Set<RedisClientType>();
  #quitting = false;
  #sha = new Map<string, string>();
  /** Times each script on `switchboard.store.duration` when a meter provider was registered before the store was made. */
  readonly #timed = storeTimer("redis");

  /** Use `redisStore()`, which also connects. */
  constructor(options: RedisStoreOptions) {
    this.#url = options.url;
    this.#prefix = options.prefix ?? "switchboard";
    this.leaseMs = options.leaseMs ?? 3_000;
    this.graceMs = options.graceMs ?? 20_000;
    this.replay = { maxEvents: options.replay?.maxEvents ?? 512, maxBytes: options.replay?.maxBytes ?? 4 << 20 };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    const socket = {
      connectTimeout: this.#connectTimeoutMs,
      // Before the first connection a failure is final (`redisStore()` rejects); after it, retry quickly.
      reconnectStrategy: (retries: number, cause: Error) =>
        this.#connected && !this.#quitting ? Math.min(50 * 2 ** retries, 1_000) : cause,
    };
    // No offline queue: a command while Redis is away fails at once, and the caller says so, instead of hanging.
    this.#client = createClient({ url: this.#url, socket, disableOfflineQueue: true }) as RedisClientType;
    this.#subscriber = this.#client.duplicate() as RedisClientType;
    for (const client of [this.#client, this.#subscriber]) {
      client.on("error", (error: Error) => {
        if (!this.#connected || this.#down.has(client)) return;
        if (this.#down.size === 0) this.onTrouble("redis unreachable", { error: error.message });
        this.#down.add(client);
      });
      // Recovered once both are back (node-redis subscribes the subscriber's channels again by itself).
      client.on("ready", () => {
        if (!this.#down.delete(client) || this.#down.size > 0) return;
        this.#loadEpoch().then(() => {
          this.onTrouble("redis reachable again", {});
          this.onRecovered();
        }, () => {});
      });
    }
  }

  /** Connects both connections (commands, subscriptions) and reads the store's epoch. */
  async connect(): Promise<void> {
    try {
      await this.#client.connect();
      await this.#subscriber.connect();
      await this.#subscriber.subscribe(this.#nodeChannel(this.node), (raw: string) => this.#nodeMessage(raw));
      await this.#loadEpoch();
      for (const script of Object.values(scripts)) this.#sha.set(script, await this.#client.scriptLoad(script));
      this.#connected = true;
    } catch (error) {
      await this.quit();
      const reason = error instanceof Error ? error.message || error.name : String(error);
      throw new Error(`cannot reach Redis at ${redact(this.#url)}: ${reason}`);
    }
  }

  async create(id: string, principal: string, epoch: string, createdAt: number): Promise<number> {
    const k = this.#keys(id);
    const created = await this.#run(scripts.CREATE, [k.m, k.l], [
      principal,
      epoch,
      this.node,
      this.leaseMs,
      this.graceMs,
      createdAt,
    ]);
    if (created !== 1) throw new Error("session id taken");
    // The principal's index is a key of its own (another Cluster slot), so it is written apart;
    // it keeps the newest `LIST_KEPT` and lives a week past the principal's last new session.
    const index = this.#principalKey(principal);
    await Promise.all([
      this.#client.zAdd(index, { score: createdAt, value: id }),
      this.#client.zRemRangeByRank(index, 0, -LIST_KEPT - 1),
      this.#client.pExpire(index, INDEX_TTL_MS),
    ]);
    return 1;
  }

  async reset(id: string, principal: string, epoch: string, last: number): Promise<number> {
    const k = this.#keys(id);
    const fence = Number(
      await this.#run(scripts.RESET, [k.m, k.e, k.l, k.r, k.z], [
        principal,
        epoch,
        this.node,
        this.leaseMs,
        this.graceMs,
        last,
      ]),
    );
    if (fence <= 0) throw new Error(fence === 0 ? "session closed" : "session owned by another node");
    return fence;
  }

  async acquire(id: string): Promise<Acquired> {
    const k = this.#keys(id);
    const reply = (await this.#run(scripts.ACQUIRE, [k.m, k.l, k.r], [this.node, this.leaseMs])) as string[];
    if (reply[0] === "missing") return { kind: "missing" };
    if (reply[0] === "held") return { kind: "held", retryMs: Math.max(1, Number(reply[1])) };
    return {
      kind: "owned",
      fence: Number(reply[1]),
      last: Number(reply[2]),
      epoch: reply[3]!,
      lapsed: reply[4] === "1",
      requests: reply.slice(5),
    };
  }

  renew(leases: { id: string; fence: number; working: boolean }[], viewed: string[]): Promise<boolean[]> {
    // Sent in one go: node-redis pipelines the commands of one tick.
    const touched = viewed.map((id) => {
      const k = this.#keys(id);
      return this.#run(scripts.TOUCH, [k.m, k.e, k.r, k.z, k.s], [this.graceMs]);
    });
    const renewed = leases.map(({ id, fence, working }) => {
      const k = this.#keys(id);
      return this.#run(scripts.RENEW, [k.m, k.l, k.e, k.r, k.z, k.s], [
        `${this.node}:${fence}`,
        this.leaseMs,
        working ? 1 : 0,
        this.graceMs,
      ]);
    });
    return Promise.all([Promise.all(renewed), ...touched]).then(([held]) => held.map((reply) => reply === 1));
  }

  async release(id: string, fence: number): Promise<void> {
    const k = this.#keys(id);
    await this.#run(scripts.RELEASE, [k.m, k.l], [`${this.node}:${fence}`]);
  }

  async append(id: string, fence: number, first: number, frames: string[]): Promise<Appended> {
    const k = this.#keys(id);
    const { maxEvents, maxBytes } = this.replay;
    // Stored without the prefix and seq every frame of the session starts with (half its bytes):
    // readers put them back. The bytes they take still count against `maxBytes`.
    const prefix = sessionEventPrefix(id);
    const last = first + frames.length - 1;
    const lines = frames.map((frame, i) => sessionEventTail(frame, prefix, first + i));
    const reply = Number(
      await this.#run(scripts.APPEND, [k.m, k.e, k.l, k.z, k.s], [
        `${this.node}:${fence}`,
        first,
        frames.length,
        maxEvents,
        maxBytes,
        this.graceMs,
        k.channel,
        lines.join("\n"),
        prefix.length + String(last).length,
      ]),
    );
    if (reply >= 0) return reply;
    return reply === -1 ? "fenced" : reply === -2 ? "gone" : reply === -3 ? "gap" : "closed";
  }

  async read(id: string, afterSeq: number): Promise<SharedRead | undefined> {
    const k = this.#keys(id);
    const reply = (await this.#run(scripts.READ, [k.m, k.e], [afterSeq, PAGE])) as string[] | null;
    if (!reply) return undefined;
    const first = Number(reply[3]);
    // Each entry is `<seq of its first event>-0` and its events' frames, less their prefix and seq, joined by newlines.
    const prefix = sessionEventPrefix(id);
    const frames: string[] = [];
    for (let i = 5; i < reply.length; i += 2) {
      const start = Number.parseInt(reply[i]!, 10);
      reply[i + 1]!.split("\n").forEach((line, at) => {
        const seq = start + at;
        if (seq > afterSeq && seq >= first) frames.push(sessionEventFromTail(prefix, seq, line));
      });
    }
    return {
      principal: reply[0]!,
      epoch: reply[1]!,
      last: Number(reply[2]),
      first,
      createdAt: Number(reply[4]),
      frames,
    };
  }

  async openRequest(id: string, fence: number, requestId: string, frame: string): Promise<boolean> {
    const k = this.#keys(id);
    const reply = await this.#run(scripts.OPEN_REQUEST, [k.l, k.r], [
      `${this.node}:${fence}`,
      requestId,
      frame,
      k.channel,
      this.graceMs,
    ]);
    return reply === 1;
  }

  async settleRequest(id: string, requestId: string): Promise<boolean> {
    return (await this.#client.hDel(this.#keys(id).r, requestId)) === 1;
  }

  async answer(id: string, requestId: string, response: string): Promise<boolean> {
    const k = this.#keys(id);
    const reply = await this.#run(scripts.ANSWER, [k.m, k.r], [requestId, response, this.#nodeChannel(""), id]);
    return reply === 1;
  }

  async requests(id: string): Promise<string[]> {
    return await this.#client.hVals(this.#keys(id).r);
  }

  async closeSession(id: string, reason: string): Promise<{ first: number; frames: string[] } | undefined> {
    const k = this.#keys(id);
    const reply = (await this.#run(scripts.CLOSE, [k.m, k.e, k.l, k.r, k.z, k.s], [
      sessionEventPrefix(id),
      reason,
      k.channel,
      this.#nodeChannel(""),
      id,
      this.node,
    ])) as string[] | null;
    if (!reply) return undefined;
    return { first: Number(reply[0]), frames: reply.slice(1) };
  }

  async saveState(id: string, fence: number, seq: number, state: string): Promise<boolean> {
    const k = this.#keys(id);
    return (await this.#run(scripts.SAVE_STATE, [k.l, k.s], [`${this.node}:${fence}`, seq, state, this.graceMs])) === 1;
  }

  async loadState(id: string): Promise<{ seq: number; state: string } | undefined> {
    const saved = await this.#client.get(this.#keys(id).s);
    if (saved === null) return undefined;
    const newline = saved.indexOf("\n");
    return { seq: Number(saved.slice(0, newline)), state: saved.slice(newline + 1) };
  }

  async list(principal: string, limit: number): Promise<StoredSession[]> {
    const index = this.#principalKey(principal);
    const ids = await this.#client.zRange(index, -limit, -1);
    // One round trip for all (node-redis pipelines the commands of one tick).
    const found = await Promise.all(ids.map(async (id) => {
      const k = this.#keys(id);
      const [meta, state] = await Promise.all([
        this.#client.hmGet(k.m, ["p", "c", "last", "closed"]),
        this.#client.get(k.s),
      ]);
      const [owner, createdAt, last, closed] = meta;
      if (owner !== principal || closed) return undefined;
      const newline = state?.indexOf("\n") ?? -1;
      return {
        id,
        createdAt: Number(createdAt),
        last: Number(last),
        state: state === null ? undefined : { seq: Number(state.slice(0, newline)), state: state.slice(newline + 1) },
      };
    }));
    // Sessions that expired or were closed leave the index as they are found.
    const gone = ids.filter((_, i) => !found[i]);
    if (gone.length > 0) await this.#client.zRem(index, gone);
    return found.filter((entry) => entry !== undefined);
  }

  async work(id: string, interrupt: boolean): Promise<"owned" | "lapsed" | "idle"> {
    const k = this.#keys(id);
    const reply = await this.#run(scripts.WORK, [k.m, k.l, k.r], [this.#nodeChannel(""), id, interrupt ? 1 : 0]);
    return reply as "owned" | "lapsed" | "idle";
  }

  async subscribe(id: string, listener: (message: SessionMessage) => void): Promise<void> {
    const prefix = sessionEventPrefix(id);
    await this.#subscriber.subscribe(this.#keys(id).channel, (raw: string) => listener(sessionMessage(raw, prefix)));
  }

  async unsubscribe(id: string): Promise<void> {
    await this.#subscriber.unsubscribe(this.#keys(id).channel);
  }

  /** Closes both connections. */
  async quit(): Promise<void> {
    this.#quitting = true;
    await Promise.all([this.#client, this.#subscriber].map((client) => client.isOpen ? client.close() : undefined))
      .catch(() => {});
  }

  /** The store's epoch: set by the first node, kept until Redis loses it (then the next node to look sets a new one). */
  async #loadEpoch(): Promise<void> {
    const key = `${this.#prefix}:epoch`;
    await this.#client.set(key, crypto.randomUUID(), { condition: "NX" });
    this.epoch = (await this.#client.get(key)) ?? this.epoch;
  }

  /** Runs `script` (`#send`), timed when there is a meter provider. */
  async #run(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    const end = this.#timed?.(OPERATIONS.get(script)!);
    if (!end) return this.#send(script, keys, args);
    try {
      const reply = await this.#send(script, keys, args);
      end(false);
      return reply;
    } catch (error) {
      end(true);
      throw error;
    }
  }

  /**
   * Runs a script by its SHA1 (loaded at connect), or whole when Redis does not have it (after
   * a restart), which loads it again. Either way the command is sent at once, in call order.
   */
  async #send(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    const options = { keys, arguments: args.map(String) };
    try {
      return await this.#client.evalSha(this.#sha.get(script)!, options);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await this.#client.eval(script, options);
    }
  }

  #keys(id: string) {
    const base = `${this.#prefix}:{${id}}`;
    return {
      m: `${base}:m`,
      e: `${base}:e`,
      l: `${base}:l`,
      r: `${base}:r`,
      z: `${base}:z`,
      s: `${base}:s`,
      channel: base,
    };
  }

  #principalKey(principal: string): string {
    return `${this.#prefix}:principal:${principal}`;
  }

  #nodeChannel(node: string): string {
    return `${this.#prefix}:node:${node}`;
  }

  #nodeMessage(raw: string): void {
    if (raw[0] === "i") {
      this.onNodeMessage({ kind: "interrupt", session: raw.slice(1) });
      return;
    }
    const first = raw.indexOf("\n");
    if (raw[0] === "c") {
      const events = sessionMessage(`x${raw.slice(first + 1)}`, "") as { first: number; frames: string[] };
      this.onNodeMessage({ kind: "closed", session: raw.slice(1, first), first: events.first, frames: events.frames });
      return;
    }
    const second = raw.indexOf("\n", first + 1);
    this.onNodeMessage({
      kind: "answer",
      session: raw.slice(1, first),
      id: raw.slice(first + 1, second),
      response: raw.slice(second + 1),
    });
  }
}

/**
 * A session channel message: `e<first>\n<line>\n…` (events as stored: frames less `prefix` and
 * their seq), `x<first>\n<frame>\n…` (the closing events, whole), `r<frame>` (a request).
 */
function sessionMessage(raw: string, prefix: string): SessionMessage {
  if (raw[0] === "r") return { kind: "request", frame: raw.slice(1) };
  const newline = raw.indexOf("\n");
  const first = Number(raw.slice(1, newline));
  const lines = raw.slice(newline + 1).split("\n");
  const closed = raw[0] === "x";
  const frames = closed ? lines : lines.map((line, i) => sessionEventFromTail(prefix, first + i, line));
  return { kind: "events", first, frames, closed };
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}
