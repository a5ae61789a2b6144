/**
 * `npm run bench [-- --quick]`: every server on every runtime, each in its own process on the
 * real runtime binary, driven by Bun load clients; prints the report and rewrites the
 * generated part of bench/RESULTS.md (everything after the `<!-- latest -->` marker).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describeEnvironment } from "./environment.ts";
import { Figures, sampleKey, type RunSamples } from "./figures.ts";
import { SERVERS, sizes as sizesFor } from "./plan.ts";
import { renderReport, renderRuns } from "./report.ts";
import { startServer } from "./server.ts";
import { measure, type Sample } from "./workloads.ts";

const quick = process.argv.includes("--quick");
const runs = quick ? 1 : 3;
const sizes = sizesFor(quick);
const environment = describeEnvironment();
const failures: string[] = [];

const brief = (sample: Sample) => Object.entries(sample).map(([metric, value]) => `${metric} ${value.toFixed(value < 100 ? 2 : 0)}`).join(", ");

const samples: RunSamples[] = [];
for (let run = 1; run <= runs; run++) {
  // Alternate the order, so drift during a run (a neighbour's load, heat) does not always favour one side.
  const order = run % 2 === 1 ? SERVERS : [...SERVERS].reverse();
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

const path = "bench/RESULTS.md";
const marker = "<!-- latest -->";
const intro = existsSync(path) ? readFileSync(path, "utf8").split(marker)[0]!.trimEnd() : "# Benchmark results";
writeFileSync(path, `${intro}\n\n${marker}\n## Latest run\n\n${report}\n${renderRuns(figures)}`);
console.log(`written to ${path}`);
process.exitCode = failures.length ? 1 : 0;
