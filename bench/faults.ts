/**
 * `npm run bench:faults`: Switchboard under attack, on each runtime. The gateway runs with its
 * default limits in its own process on the real binary; one Bun process (the probe) makes 1×1
 * calls throughout, and for each flood another Bun process attacks. Each phase reports the
 * server's peak RSS and the probe's p50/p99 against a quiet phase. Loopback only, bounded in
 * time (it gives up past `DEADLINE_MS`); prints the section and writes it into bench/RESULTS.md.
 */
import { type Child, startChild } from "./children.ts";
import { describeEnvironment } from "./environment.ts";
import type { FaultClientConfig, ProbeResult } from "./fault-client.ts";
import { type PhaseResult, renderUnderAttack, writeUnderAttack } from "./faults-report.ts";
import type { FloodName, FloodStats } from "./floods.ts";
import { Histogram } from "./histogram.ts";
import { readRss, resetPeak } from "./peak-rss.ts";
import { BIN, type Runtime, RUNTIMES } from "./plan.ts";
import { type RunningServer, startServer } from "./server.ts";

const PHASE_MS = 3_000;
const FLOODS: readonly FloodName[] = ["tiny", "deep", "oversized", "stalled"];
/** The longest any one answer from a child may take. */
const ANSWER_MS = 15_000;
const DEADLINE_MS = 115_000;

setTimeout(() => {
  console.error(`bench:faults: not done within ${DEADLINE_MS / 1000} s; giving up`);
  process.exit(1); // children.ts kills every child still running
}, DEADLINE_MS).unref();

function faultClient(label: string, config: FaultClientConfig): Child {
  return startChild(label, BIN.bun, ["bench/fault-client.ts", JSON.stringify(config)]);
}

/** One phase: the flood (if any) under way, then the probe's calls for `PHASE_MS`. */
async function phase(
  runtime: Runtime,
  server: RunningServer,
  probe: Child,
  flood: FloodName | undefined,
): Promise<PhaseResult> {
  resetPeak(server.pid);
  const attacker = flood &&
    faultClient(`${runtime} ${flood} flood`, { role: flood, url: server.url, maxMs: 4 * ANSWER_MS });
  try {
    if (attacker) await attacker.next(ANSWER_MS);
    const rssAtStart = readRss(server.pid).rss;
    probe.send(`go ${PHASE_MS}`);
    const result = await probe.next<ProbeResult>(PHASE_MS + ANSWER_MS);
    let stats: FloodStats | undefined;
    if (attacker) {
      attacker.send("stop");
      stats = await attacker.next<FloodStats>(ANSWER_MS);
    }
    const histogram = Histogram.fromJSON(result.histogram);
    return {
      runtime,
      phase: flood ?? "quiet",
      rssAtStart,
      peakRss: readRss(server.pid).peak,
      p50Us: histogram.quantile(0.5),
      p99Us: histogram.quantile(0.99),
      calls: result.calls,
      probeClosed: result.closed,
      stats,
    };
  } finally {
    await attacker?.stop();
  }
}

const results: PhaseResult[] = [];
const environment = describeEnvironment();
for (const runtime of RUNTIMES) {
  const server = await startServer({
    runtime,
    name: "under-attack",
    script: "bench/servers/under-attack.ts",
    workloads: [],
  });
  const probe = faultClient(`${runtime} probe`, { role: "probe", url: server.url, maxMs: DEADLINE_MS });
  try {
    await probe.next(ANSWER_MS);
    for (const flood of [undefined, ...FLOODS]) {
      const result = await phase(runtime, server, probe, flood).catch((error: Error) =>
        ({ runtime, phase: flood ?? "quiet", failure: error.message }) as PhaseResult
      );
      results.push(result);
      console.error(
        `${runtime} ${result.phase}: ${
          result.failure ??
            `p50 ${result.p50Us.toFixed(0)} µs, p99 ${result.p99Us.toFixed(0)} µs, peak RSS ${
              (result.peakRss / 2 ** 20).toFixed(0)
            } MB`
        }`,
      );
    }
  } finally {
    await probe.stop();
    await server.stop();
  }
}

const section = renderUnderAttack(results, environment, PHASE_MS);
console.log(`\n${section}`);
writeUnderAttack("bench/RESULTS.md", section);
console.log("written to bench/RESULTS.md");
process.exit(results.some((r) => r.failure) ? 1 : 0);
