/**
 * Heap snapshots of a bench server through the V8 inspector (a server started with
 * `--inspect=127.0.0.1:<port>`, on Node or Deno), and what they hold, grouped by constructor.
 *
 * As a command, `tsx bench/heap-snapshot.ts <before> <after> [--top=N] [--count=Name,…]
 * [--retainers=Name,…]` prints what grew between two snapshots of one process (objects by
 * constructor, count and self size), how many objects of each `--count` constructor each holds
 * and, for each `--retainers` constructor, what keeps alive its instances that are in the
 * second snapshot but not the first (node ids are stable within a process): the shortest path
 * from a GC root to each, grouped by shape. Names as printed: `WebSocket (object)`.
 */
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { finished } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import WebSocket from "ws";

/** The runtime flag that opens the inspector on `port` (Node's and Deno's spelling agree). */
export const inspectFlag = (port: number) => `--inspect=127.0.0.1:${port}`;

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * An inspector session with a Node or Deno process listening on `port`. Snapshots taken in one
 * session number their objects alike (ids are kept per session), so keep one session for all
 * the snapshots that are to be compared.
 */
export class Inspector {
  readonly #ws: WebSocket;
  readonly #answers = new Map<number, () => void>();
  #nextId = 0;
  #chunks: ((chunk: string) => void) | undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as { id?: number; method?: string; params?: { chunk: string } };
      if (message.method === "HeapProfiler.addHeapSnapshotChunk") this.#chunks?.(message.params!.chunk);
      else if (message.id !== undefined) this.#answers.get(message.id)?.();
    });
  }

  static async connect(port: number): Promise<Inspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl, { maxPayload: 1 << 30 });
    await new Promise<void>((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const inspector = new Inspector(ws);
    await inspector.#call("HeapProfiler.enable", 10_000);
    return inspector;
  }

  /** Writes a heap snapshot (taken after the runtime's own full GC) to `path`. */
  async snapshot(path: string, timeoutMs = 180_000): Promise<void> {
    const out = createWriteStream(path);
    this.#chunks = (chunk) => out.write(chunk);
    try {
      await this.#call("HeapProfiler.takeHeapSnapshot", timeoutMs, { reportProgress: false });
    } finally {
      this.#chunks = undefined;
      out.end();
      await finished(out);
    }
  }

  close(): void {
    this.#ws.close();
  }

  #call(method: string, timeoutMs: number, params: object = {}): Promise<void> {
    const id = ++this.#nextId;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#answers.delete(id);
        reject(new Error(`inspector: no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#answers.set(id, () => {
        this.#answers.delete(id);
        clearTimeout(timer);
        resolve();
      });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }
}

/** A parsed snapshot, with what the summaries need. */
export class HeapSnapshot {
  readonly #nodes: Int32Array | number[];
  readonly #edges: number[];
  readonly #strings: string[];
  readonly #nodeTypes: string[];
  readonly #edgeTypes: string[];
  readonly #nodeFields: number;
  readonly #edgeFields: number;
  readonly #firstEdge: Uint32Array;

  constructor(path: string) {
    const json = JSON.parse(readFileSync(path, "utf8"));
    const meta = json.snapshot.meta;
    this.#nodes = json.nodes;
    this.#edges = json.edges;
    this.#strings = json.strings;
    this.#nodeTypes = meta.node_types[0];
    this.#edgeTypes = meta.edge_types[0];
    this.#nodeFields = meta.node_fields.length;
    this.#edgeFields = meta.edge_fields.length;
    const count = this.#nodes.length / this.#nodeFields;
    this.#firstEdge = new Uint32Array(count + 1);
    for (let i = 0, edge = 0; i < count; i++) {
      this.#firstEdge[i] = edge;
      edge += this.#nodes[i * this.#nodeFields + 4]! * this.#edgeFields;
    }
    this.#firstEdge[count] = this.#edges.length;
  }

  get nodeCount(): number {
    return this.#nodes.length / this.#nodeFields;
  }

  type(node: number): string {
    return this.#nodeTypes[this.#nodes[node * this.#nodeFields]!]!;
  }

  name(node: number): string {
    return this.#strings[this.#nodes[node * this.#nodeFields + 1]!]!;
  }

  id(node: number): number {
    return this.#nodes[node * this.#nodeFields + 2]!;
  }

  selfSize(node: number): number {
    return this.#nodes[node * this.#nodeFields + 3]!;
  }

  /** What a node counts as: its constructor for objects and closures, else its kind. */
  group(node: number): string {
    const type = this.type(node);
    if (type === "object" || type === "closure" || type === "native" || type === "hidden" || type === "code") {
      // Contexts and other internal objects are named with their id (`system / Context @123`).
      return `${this.name(node).replace(/ @\d+$/, "")} (${type})`;
    }
    if (type === "array" || type === "object shape") return `${this.name(node).replace(/ \/ .*/, "")} (${type})`;
    return `(${type})`;
  }

  /** Count and self size by group. */
  groups(): Map<string, { count: number; size: number }> {
    const groups = new Map<string, { count: number; size: number }>();
    for (let node = 0; node < this.nodeCount; node++) {
      const key = this.group(node);
      const entry = groups.get(key) ?? { count: 0, size: 0 };
      entry.count++;
      entry.size += this.selfSize(node);
      groups.set(key, entry);
    }
    return groups;
  }

  /** Node ids present. */
  ids(): Set<number> {
    const ids = new Set<number>();
    for (let node = 0; node < this.nodeCount; node++) ids.add(this.id(node));
    return ids;
  }

  /** For each node, the node and edge it is first reached by in a breadth-first walk from the root, weak edges skipped. */
  #parents(): { parent: Int32Array; edge: Int32Array } {
    const count = this.nodeCount;
    const parent = new Int32Array(count).fill(-1);
    const edge = new Int32Array(count).fill(-1);
    const weak = this.#edgeTypes.indexOf("weak");
    const queue = new Int32Array(count);
    let head = 0;
    let tail = 0;
    queue[tail++] = 0;
    parent[0] = 0;
    while (head < tail) {
      const node = queue[head++]!;
      for (let e = this.#firstEdge[node]!; e < this.#firstEdge[node + 1]!; e += this.#edgeFields) {
        if (this.#edges[e] === weak) continue;
        const to = this.#edges[e + 2]! / this.#nodeFields;
        if (parent[to] !== -1) continue;
        parent[to] = node;
        edge[to] = e;
        queue[tail++] = to;
      }
    }
    return { parent, edge };
  }

  #edgeName(e: number): string {
    const type = this.#edgeTypes[this.#edges[e]!]!;
    const nameOrIndex = this.#edges[e + 1]!;
    return type === "element" || type === "hidden" ? `[${nameOrIndex}]` : this.#strings[nameOrIndex]!;
  }

  /**
   * What keeps the nodes of `group` (not among `excludeIds`) alive: the shortest path from a GC
   * root to each, and how many share it. A path lists the objects on the way (`Group.edge` at
   * each step), element indexes and ids left out so that paths of the same shape count as one;
   * most common first.
   */
  retainers(group: string, excludeIds = new Set<number>()): [path: string, count: number][] {
    const { parent, edge } = this.#parents();
    const paths = new Map<string, number>();
    for (let node = 0; node < this.nodeCount; node++) {
      if (this.group(node) !== group || excludeIds.has(this.id(node))) continue;
      const steps: string[] = [];
      if (parent[node] === -1) steps.push("(unreachable)");
      for (let at = node; parent[at] !== -1 && at !== 0 && steps.length < 40; at = parent[at]!) {
        const name = this.#edgeName(edge[at]!).replace(/^\[?\d+\]?$/, "[]").replaceAll(/ @\d+/g, "");
        steps.push(`${name} → ${this.group(at)}`);
      }
      const path = steps.reverse().join("  ");
      paths.set(path, (paths.get(path) ?? 0) + 1);
    }
    return [...paths].sort((a, b) => b[1] - a[1]);
  }
}

/** How many objects of each of `names` (groups, e.g. `WebSocket (object)`) `snapshot` holds: `Name N, …`. */
export function counts(snapshot: HeapSnapshot, names: readonly string[]): string {
  const groups = snapshot.groups();
  return names.map((name) => `${name.replace(/ \(object\)$/, "")} ${groups.get(name)?.count ?? 0}`).join(", ");
}

/** Lines of what grew from `before` to `after`, largest growth in self size first. */
export function growth(before: HeapSnapshot, after: HeapSnapshot, top: number): string[] {
  const a = before.groups();
  const b = after.groups();
  const rows = [...new Set([...a.keys(), ...b.keys()])].map((key) => {
    const x = a.get(key) ?? { count: 0, size: 0 };
    const y = b.get(key) ?? { count: 0, size: 0 };
    return { key, count: y.count - x.count, size: y.size - x.size, countAfter: y.count };
  });
  rows.sort((p, q) => q.size - p.size);
  const total = rows.reduce((sum, row) => sum + row.size, 0);
  return [
    `self size ${(total / 1024).toFixed(0)} KB more in all; largest changes:`,
    ...rows.slice(0, top).map((row) =>
      `${(row.size / 1024).toFixed(1).padStart(9)} KB ${
        String(row.count).padStart(7)
      } objects  ${row.key} (${row.countAfter} now)`
    ),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const [beforePath, afterPath] = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
  if (!beforePath || !afterPath) {
    throw new Error("usage: tsx bench/heap-snapshot.ts <before> <after> [--top=N] [--retainers=Name (object),…]");
  }
  const flag = (name: string) => process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const before = new HeapSnapshot(beforePath);
  const after = new HeapSnapshot(afterPath);
  console.log(growth(before, after, Number(flag("top") ?? 30)).join("\n"));
  const counted = flag("count")?.split(",") ?? [];
  if (counted.length) console.log(`\nbefore: ${counts(before, counted)}\nafter:  ${counts(after, counted)}`);
  const wanted = flag("retainers")?.split(",") ?? [];
  const old = wanted.length ? before.ids() : new Set<number>();
  for (const group of wanted) {
    console.log(`\nwhat holds the ${group} objects new since the first snapshot (shortest path from a root):`);
    for (const [path, count] of after.retainers(group, old).slice(0, 8)) console.log(`  ${count} × ${path}`);
  }
}
