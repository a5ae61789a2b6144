/**
 * The "Under attack" section of bench/RESULTS.md: one row per runtime and phase, each flood
 * set against the quiet phase of the same runtime and run. It lives between its own markers,
 * before `<!-- latest -->`, so `npm run bench` (which rewrites only what follows that marker)
 * keeps it, and `npm run bench:faults` rewrites only it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { FloodName, FloodStats } from "./floods.ts";
import type { Runtime } from "./plan.ts";

export interface PhaseResult {
  runtime: Runtime;
  phase: "quiet" | FloodName;
  /** The server's RSS when the probe started, and its peak over the phase, in bytes. */
  rssAtStart: number;
  peakRss: number;
  p50Us: number;
  p99Us: number;
  /** The probe's calls in the phase. */
  calls: number;
  /** The probe's close code, had the server closed it. */
  probeClosed?: number;
  stats?: FloodStats;
  /** Why the phase could not be measured. */
  failure?: string;
}

const START = "<!-- under-attack -->";
const END = "<!-- /under-attack -->";
const LATEST = "<!-- latest -->";

/** What each flood does, for the table's note. */
const ATTACKS: Record<FloodName, string> = {
  tiny:
    "4 connections send a tiny `add` request as fast as their sockets take it (rate limit: 5,000/s per connection, then 1008)",
  deep:
    "2 connections keep 2 requests each in flight whose params are a 100,000-deep array (~200 KB a frame; depth limit 32)",
  oversized: "4 connections each send a 2 MiB frame (limit 1 MiB) and reconnect when closed",
  stalled:
    "2 clients each create a session, start a stream of 30,000 events of ~1 KB, stop reading for 1.5 s (backlog cap 8 MiB), then read again and reconnect",
};

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const count = (n: number) => n.toLocaleString("en-US");
const times = (value: number, quiet: number | undefined) => (quiet ? ` (${(value / quiet).toFixed(1)}×)` : "");

/** What the server did with the attack: the attackers' connections and how they were closed. */
function outcome(stats: FloodStats | undefined): string {
  if (!stats) return "–";
  const closes = Object.entries(stats.closes).map(([code, n]) => `${code} ×${count(n)}`);
  return `${count(stats.connections)} conns, ${count(stats.sent)} frames sent, ${count(stats.received)} back; closed ${
    closes.join(", ") || "none"
  }`;
}

function row(result: PhaseResult, quiet: PhaseResult | undefined): string {
  if (result.failure) return `| ${result.runtime} | ${result.phase} | failed: ${result.failure} | | | | |`;
  const probe = result.probeClosed === undefined
    ? count(result.calls)
    : `${count(result.calls)}, **closed ${result.probeClosed}**`;
  return [
    "",
    result.runtime,
    result.phase,
    `${mb(result.rssAtStart)} → ${mb(result.peakRss)}`,
    `${count(Math.round(result.p50Us))}${times(result.p50Us, quiet?.p50Us)}`,
    `${count(Math.round(result.p99Us))}${times(result.p99Us, quiet?.p99Us)}`,
    probe,
    outcome(result.stats),
    "",
  ].join(" | ").trim();
}

/** The whole section, from `## Under attack` on. */
export function renderUnderAttack(results: PhaseResult[], environment: string[], phaseMs: number): string {
  const quiet = (runtime: Runtime) => results.find((r) => r.runtime === runtime && r.phase === "quiet" && !r.failure);
  return [
    "## Under attack",
    "",
    "`npm run bench:faults` (about 1½ minutes, loopback only): on each runtime, Switchboard with every limit at its",
    "default (`bench/servers/under-attack.ts`) runs in its own process on the real binary; one Bun process is a",
    "well-behaved client (the probe) making one `add` call at a time, at most one per millisecond, and for each flood",
    `another Bun process attacks. Each phase lasts ${
      phaseMs / 1000
    } s of probe calls, after the attack is under way. RSS is`,
    "the server's, from `/proc` (VmRSS when the probe starts → VmHWM over the phase); the probe's latency is set",
    "against the quiet phase of the same runtime. The probe was never disconnected unless the table says so.",
    "",
    ...Object.entries(ATTACKS).map(([name, text]) => `- **${name}**: ${text}.`),
    "",
    "**Noise**: 2 cores shared by the server, the attacker and the probe, so absolute figures are noisy; part of",
    "every flood's latency is CPU taken by the attacker process itself.",
    "",
    ...environment.map((line) => `- ${line}`),
    "",
    "| runtime | phase | server RSS MB (start → peak) | probe p50 µs (× quiet) | probe p99 µs (× quiet) | probe calls | what the attack got |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...results.map((result) => row(result, result.phase === "quiet" ? undefined : quiet(result.runtime))),
  ].join("\n");
}

/** Replaces the section in `path` (or puts it just before `<!-- latest -->`), leaving the rest as it is. */
export function writeUnderAttack(path: string, section: string): void {
  const block = `${START}\n${section}\n${END}`;
  const text = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmark results\n";
  let updated: string;
  if (text.includes(START) && text.includes(END)) {
    updated = text.slice(0, text.indexOf(START)) + block + text.slice(text.indexOf(END) + END.length);
  } else if (text.includes(LATEST)) updated = text.replace(LATEST, () => `${block}\n\n${LATEST}`);
  else updated = `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, updated);
}
