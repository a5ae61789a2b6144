#!/usr/bin/env node
// `deno doc --lint` over every public entry point (the `exports` of deno.json). One kind of
// report is left out: a `private-type-ref` to a type that src/ does not declare, i.e. a
// dependency's own type (Hono's `Context`, Standard Schema's `StandardSchemaV1`, …). Those are
// public in their own packages, but Deno's doc linter counts any type this package does not
// export as private (docs/decisions.md, "Packaging"). Every other report fails the check.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const entries = Object.values(JSON.parse(readFileSync("deno.json", "utf8")).exports);
const { stdout, stderr, status } = spawnSync("node_modules/.bin/deno", ["doc", "--lint", ...entries], {
  encoding: "utf8",
  env: { ...process.env, NO_COLOR: "1" },
});
const sources = readdirSync("src", { recursive: true })
  .filter((file) => file.endsWith(".ts"))
  .map((file) => readFileSync(join("src", file), "utf8"))
  .join("\n");
// A declaration at the start of a line (not an `import { type X }`).
const declaredHere = (name) =>
  new RegExp(`^\\s*(export\\s+)?(declare\\s+)?(abstract\\s+)?(interface|type|class|enum|namespace)\\s+${name}\\b`, "m")
    .test(sources);

// Each report starts with `error[rule]: …`; the last `error: Found N …` line is the summary.
const reports = `${stdout}${stderr}`.split(/^(?=error)/m).filter((report) => report.startsWith("error["));
const dependencyType = (report) => {
  const name = /^error\[private-type-ref\]: .* references private type '([\w$]+)/.exec(report)?.[1];
  return name !== undefined && !declaredHere(name);
};
const left = reports.filter((report) => !dependencyType(report));
for (const report of left) process.stderr.write(report);
console.log(
  `deno doc --lint: ${left.length} problems (${
    reports.length - left.length
  } references to dependencies' own types left out)`,
);
process.exit(status !== 0 && reports.length === 0 ? 1 : left.length === 0 ? 0 : 1);
