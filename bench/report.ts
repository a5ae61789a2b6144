/** The report as Markdown: one table per workload, every figure beside its ratio to the floor, then the targets. */
import { type Figures, median } from "./figures.ts";
import { type Runtime, RUNTIMES, SERVERS, type Sizes, type Workload } from "./plan.ts";

const number = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n)
    ? "–"
    : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const times = (n: number | undefined) => (n === undefined ? "–" : `${n.toFixed(2)}×`);
const signed = (
  n: number | undefined,
  digits = 0,
) => (n === undefined ? "–" : `${n >= 0 ? "+" : "−"}${number(Math.abs(n), digits)}`);
const row = (cells: string[]) => `| ${cells.join(" | ")} |`;

interface Column {
  title: string;
  metric: string;
  digits?: number;
  /** Shown in another unit than measured (µs → ms). */
  scale?: number;
  /** How the figure is set against the floor's: a ratio (default), a difference, or both. */
  compare?: "ratio" | "difference" | "both";
}

const scaled = (n: number | undefined, scale = 1) => (n === undefined ? undefined : n * scale);

function table(figures: Figures, workload: Workload, columns: Column[]): string {
  const head = ["runtime", "server"];
  for (const { title, compare = "ratio" } of columns) {
    head.push(title, ...(compare === "difference" ? [] : ["×floor"]), ...(compare === "ratio" ? [] : ["− floor"]));
  }
  const lines = [row(head), row(head.map(() => "---"))];
  for (const { runtime, name, workloads } of SERVERS) {
    if (!workloads.includes(workload)) continue;
    const cells = [runtime, name];
    for (const { metric, digits, scale, compare = "ratio" } of columns) {
      cells.push(number(scaled(figures.value(runtime, name, workload, metric), scale), digits));
      if (compare !== "difference") cells.push(times(figures.ratio(runtime, name, workload, metric)));
      if (compare !== "ratio") {
        cells.push(
          name === "floor" ? "" : signed(scaled(figures.difference(runtime, name, workload, metric), scale), digits),
        );
      }
    }
    lines.push(row(cells));
  }
  return lines.join("\n");
}

/**
 * The gap split in two: what Switchboard's `serve()` and Hono's upgrade helper cost
 * (hono-floor against the floor), and what the gateway core costs (Switchboard against hono-floor).
 */
function split(f: Figures): string {
  const lines = [
    row(["runtime", "figure", "integration: hono-floor vs floor", "gateway core: switchboard vs hono-floor"]),
    row(["---", "---", "---", "---"]),
  ];
  for (const runtime of RUNTIMES) {
    const ratios = (title: string, workload: Workload, metric: string) =>
      lines.push(
        row([
          runtime,
          title,
          times(f.ratio(runtime, "hono-floor", workload, metric)),
          times(f.ratio(runtime, "switchboard", workload, metric, "hono-floor")),
        ]),
      );
    const differences = (title: string, workload: Workload, metric: string, unit: string, digits: number) =>
      lines.push(
        row([
          runtime,
          title,
          `${signed(f.difference(runtime, "hono-floor", workload, metric), digits)} ${unit}`,
          `${signed(f.difference(runtime, "switchboard", workload, metric, "hono-floor"), digits)} ${unit}`,
        ]),
      );
    ratios("server CPU per request (rpc throughput)", "rpc", "cpu_us");
    ratios("stream events/s", "stream", "rate");
    ratios("fan-out deliveries/s", "fanout", "rate");
    ratios("session stream events/s", "session-stream", "rate");
    differences("1×1 p50", "latency", "p50_us", "µs", 0);
    differences("idle RSS per connection", "idle", "rss_kb", "KB", 1);
    differences("idle JS heap per connection", "idle", "heap_kb", "KB", 1);
  }
  return lines.join("\n");
}

interface Target {
  runtime: Runtime;
  text: string;
  figure: string;
  /** The lowest and highest run, so a median can be read against the noise behind it. */
  runs: string;
  met: boolean | undefined;
}

function targets(f: Figures): Target[] {
  const list: Target[] = [];
  const check = (
    runtime: Runtime,
    text: string,
    values: number[],
    figure: (v: number) => string,
    ok: (v: number) => boolean,
  ) => {
    const value = median(values);
    const runs = values.length > 1 ? `${figure(Math.min(...values))} … ${figure(Math.max(...values))}` : "";
    list.push({
      runtime,
      text,
      figure: value === undefined ? "no data" : figure(value),
      runs,
      met: value === undefined ? undefined : ok(value),
    });
  };
  for (const runtime of RUNTIMES) {
    check(
      runtime,
      "server CPU per request (rpc throughput) ≤ 1.10 × floor",
      f.ratios(runtime, "switchboard", "rpc", "cpu_us"),
      times,
      (v) => v <= 1.1,
    );
    const streamMin = runtime === "node" ? 3 : 1;
    check(
      runtime,
      `stream events/s ≥ ${streamMin.toFixed(1)} × floor`,
      f.ratios(runtime, "switchboard", "stream", "rate"),
      times,
      (v) => v >= streamMin,
    );
    check(
      runtime,
      "fan-out deliveries/s ≥ 1.0 × floor",
      f.ratios(runtime, "switchboard", "fanout", "rate"),
      times,
      (v) => v >= 1,
    );
    check(
      runtime,
      `session stream events/s ≥ ${streamMin.toFixed(1)} × floor`,
      f.ratios(runtime, "switchboard", "session-stream", "rate"),
      times,
      (v) => v >= streamMin,
    );
    check(
      runtime,
      "1×1 round-trip p50 ≤ floor + 20 µs",
      f.differences(runtime, "switchboard", "latency", "p50_us"),
      (v) => `${signed(v)} µs`,
      (v) => v <= 20,
    );
    check(
      runtime,
      "idle RSS ≤ floor + 4 KB per connection",
      f.differences(runtime, "switchboard", "idle", "rss_kb"),
      (v) => `${signed(v, 1)} KB`,
      (v) => v <= 4,
    );
  }
  for (const other of ["rpc-websockets", "json-rpc-2.0"]) {
    check(
      "node",
      `server CPU per request ≤ 0.70 × ${other}'s`,
      f.ratios("node", "switchboard", "rpc", "cpu_us", other),
      times,
      (v) => v <= 0.7,
    );
  }
  return list;
}

/** The whole generated section: what was measured, on what, the tables and the targets. */
export function renderReport(
  figures: Figures,
  sizes: Sizes,
  environment: string[],
  quick: boolean,
  failures: string[],
): string {
  const runs = figures.runs.length;
  const { rpc, latency, stream, idle, fanout, sessionStream } = sizes;
  const count = (n: number) => n.toLocaleString("en-US");
  const targetRows = targets(figures).map((t) =>
    row([t.runtime, t.text, t.figure, t.runs, t.met === undefined ? "no data" : t.met ? "met" : "**not met**"])
  );
  return [
    `${
      quick ? "**--quick: 1 run, smaller rpc and idle counts, so indicative only.**" : `Medians of ${runs} runs.`
    } Every ratio or difference is taken against the floor (or the named server) measured in the same run; the median of those is shown.`,
    "",
    ...environment.map((line) => `- ${line}`),
    "",
    `### rpc throughput: ${rpc.connections} connections × ${rpc.inFlight} in flight, \`add\`, ${
      count(rpc.total)
    } requests from ${rpc.clients} Bun client processes (after ${count(rpc.warmup)} warm-up)`,
    "",
    table(figures, "rpc", [
      { title: "requests/s", metric: "rate" },
      { title: "p50 ms", metric: "p50_us", scale: 1e-3, digits: 1 },
      { title: "p99 ms", metric: "p99_us", scale: 1e-3, digits: 1 },
      { title: "server CPU µs/request", metric: "cpu_us", digits: 2 },
    ]),
    "",
    `### rpc latency: 1 connection × 1 in flight, ${count(latency.total)} round trips (after ${
      count(latency.warmup)
    } warm-up)`,
    "",
    table(figures, "latency", [
      { title: "p50 µs", metric: "p50_us", compare: "both" },
      { title: "p99 µs", metric: "p99_us" },
      { title: "server CPU µs/request", metric: "cpu_us", digits: 2 },
    ]),
    "",
    `### stream: one request, ${count(stream.count)} \`message.delta\` events of ~60-byte payload (after a ${
      count(stream.warmup)
    }-event warm-up)`,
    "",
    table(figures, "stream", [
      { title: "events/s", metric: "rate" },
      { title: "server CPU µs/event", metric: "cpu_us", digits: 2 },
    ]),
    "",
    `### idle: ${
      count(idle.connections)
    } connections open after their first frame (growth past ${idle.warmup} warm-up connections, after a full GC)`,
    "",
    table(figures, "idle", [
      { title: "RSS KB/conn", metric: "rss_kb", digits: 1, compare: "both" },
      { title: "JS heap KB/conn", metric: "heap_kb", digits: 1, compare: "difference" },
    ]),
    "",
    `### fan-out: one session, ${fanout.viewers} viewers, ${count(fanout.count)} events (after ${
      count(fanout.warmup)
    }); a delivery is one event to one viewer`,
    "",
    table(figures, "fanout", [
      { title: "deliveries/s", metric: "rate" },
      { title: "server CPU µs/delivery", metric: "cpu_us", digits: 3 },
    ]),
    "",
    `### session stream: one session, one viewer, ${count(sessionStream.count)} events (after ${
      count(sessionStream.warmup)
    }); Switchboard stamps seqs and keeps a replay ring, the floor a counter`,
    "",
    table(figures, "session-stream", [
      { title: "events/s", metric: "rate" },
      { title: "server CPU µs/event", metric: "cpu_us", digits: 2 },
    ]),
    "",
    "### Targets",
    "",
    row(["runtime", "target", "median", "runs (lowest … highest)", ""]),
    row(["---", "---", "---", "---", "---"]),
    ...targetRows,
    "",
    "### Where the gap is",
    "",
    split(figures),
    ...(failures.length ? ["", "### Failed measurements", "", ...failures.map((failure) => `- ${failure}`)] : []),
    "",
  ].join("\n");
}

/** Every run's raw figures, for judging the noise behind the medians. */
export function renderRuns(figures: Figures): string {
  const lines = [
    "<details><summary>Every run's figures</summary>",
    "",
    row(["run", "server / workload", "figures"]),
    row(["---", "---", "---"]),
  ];
  figures.runs.forEach((run, i) => {
    for (const [key, sample] of run) {
      const text = Object.entries(sample).map(([metric, value]) => `${metric} ${number(value, value < 100 ? 2 : 0)}`);
      lines.push(row([String(i + 1), key, text.join(", ")]));
    }
  });
  return [...lines, "", "</details>", ""].join("\n");
}
