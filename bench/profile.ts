/**
 * `npm run bench:profile -- <runtime> <server> <workload> [--quick] [--top N]`: runs one
 * workload once against one server started under its runtime's CPU profiler (`--cpu-prof`
 * on Node, Deno and Bun alike), then prints the functions with the most self time in the
 * measured part (between the server's two readings). The whole profile is kept for DevTools.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CpuProfile, selfTimes } from "./cpuprofile.ts";
import { SERVERS, sizes, type Workload } from "./plan.ts";
import { startServer } from "./server.ts";
import { measure } from "./workloads.ts";

const [runtime, name, workload] = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
const topAt = process.argv.indexOf("--top");
const top = topAt === -1 ? 25 : Number(process.argv[topAt + 1]);
const spec = SERVERS.find((s) =>
  s.runtime === runtime && s.name === name && s.workloads.includes(workload as Workload)
);
if (!spec) {
  const known = SERVERS.map((s) => `${s.runtime} ${s.name} (${s.workloads.join("|")})`).join(", ");
  console.error(`usage: npm run bench:profile -- <runtime> <server> <workload> [--quick] [--top N]\nservers: ${known}`);
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), "switchboard-profile-"));
const server = await startServer(spec, dir);
try {
  const sample = await measure(workload as Workload, server, sizes(process.argv.includes("--quick")));
  console.log(`${runtime} ${name} ${workload}: ${JSON.stringify(sample)}`);
} finally {
  await server.stop();
}

const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
const [from, to] = server.marks.slice(-2) as [number, number];
const rows = selfTimes(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile, from, to).slice(0, top);
console.log(
  `\nTop ${rows.length} functions by self time in the measured part (share of its busy time), from ${
    join(dir, file)
  }:\n`,
);
for (const { name: fn, ms, share } of rows) {
  console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(6)} ms  ${fn}`);
}
