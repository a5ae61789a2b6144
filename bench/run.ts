/**
 * `npm run bench [-- --quick] [--only=<runtime>] [--servers=<name>,…] [--workloads=<name>,…]`:
 * every server on every runtime, each in its own process on the real runtime binary, driven
 * by Bun load clients; prints the report and rewrites the generated part of bench/RESULTS.md
 * (everything after the `<!-- latest -->` marker). With a filter, the report is printed only:
 * a partial run never replaces the full one in RESULTS.md.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describeEnvironment } from "./environment.ts";
import { Figures, type RunSamples, sampleKey } from "./figures.ts";
import { SERVERS, sizes as sizesFor } from "./plan.ts";
import { renderReport, renderRuns } from "./report.ts";
import { startServer } from "./server.ts";
import { measure, type Sample } from "./workloads.ts";

const quick = process.argv.includes("--quick");
/** The comma-separated values of `--<name>=…`, or undefined when the flag is absent. */
const filter = (name: string) =>
  process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3).split(",");
const only = filter("only");
const names = filter("servers");
const workloads = filter("workloads");
const partial = Boolean(only || names || workloads);
const selected = SERVERS.filter((s) => (!only || only.includes(s.runtime)) && (!names || names.includes(s.name)))
  .map((s) => ({ ...s, workloads: s.workloads.filter((w) => !workloads || workloads.includes(w)) }))
  .filter((s) => s.workloads.length > 0);
if (selected.length === 0) throw new Error("no server matches --only / --servers / --workloads");
const runs = quick ? 1 : 3;
const sizes = sizesFor(quick);
const environment = describeEnvironment();
const failures: string[] = [];

const brief = (sample: Sample) =>
  Object.entries(sample).map(([metric, value]) => `${metric} ${value.toFixed(value < 100 ? 2 : 0)}`).join(", ");

const samples: RunSamples[] = [];
for (let run = 1; run <= runs; run++) {
  // Alternate the order, so drift during a run (a neighbour's load, heat) does not always favour one side.
  const order = run % 2 === 1 ? selected : [...selected].reverse();
  const results: RunSamples = new Map();
  for (const spec of order) {
    const server = await startServer(spec);
    try {
      for (const workload of spec.workloads) {
        const key = sampleKey(spec.runtime, spec.name, workload);
        try {
          const sample = await measure(workload, server, sizes);
          results.set(key, sample);
          console.error(`run ${run}/${runs} ${key}: ${brief(sample)}`);
        } catch (error) {
          failures.push(`run ${run} ${key}: ${(error as Error).message}`);
          console.error(`run ${run}/${runs} ${key}: FAILED ${(error as Error).message}`);
        }
      }
    } finally {
      await server.stop();
    }
  }
  samples.push(results);
}

const figures = new Figures(samples);
const report = renderReport(figures, sizes, environment, quick, failures);
console.log(`\n${report}`);

if (partial) {
  console.log("partial run (filtered): bench/RESULTS.md left as it is");
  process.exit(failures.length ? 1 : 0);
}
const path = "bench/RESULTS.md";
const marker = "<!-- latest -->";
const intro = existsSync(path) ? readFileSync(path, "utf8").split(marker)[0]!.trimEnd() : "# Benchmark results";
writeFileSync(path, `${intro}\n\n${marker}\n## Latest run\n\n${report}\n${renderRuns(figures)}`);
console.log(`written to ${path}`);
process.exitCode = failures.length ? 1 : 0;
