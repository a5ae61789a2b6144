#!/usr/bin/env node
// `npm test`: type-checks, lints, checks the format and the API docs, dry-runs the JSR publish,
// then runs the whole suite on Node, Deno and Bun, each with its own test runner over the same
// files (Node also runs test/package/, which packs the project and tries the tarball on all
// three runtimes, and every code block of the docs), and ends with one line:
// `N passed, N failed` (totals; each failed check counts as one failure).
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const bin = (name) => join("node_modules", ".bin", name);
// test/*.test.ts and test/faults/*.test.ts (the fault-injection suite).
const testsIn = (dir) =>
  existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".test.ts")).sort().map((f) => join(dir, f)) : [];
const testFiles = [...testsIn("test"), ...testsIn(join("test", "faults"))];

/** Runs a command with its output shown live; resolves with its exit code and output. */
function run(command, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    let output = "";
    const show = (stream, to) => stream.on("data", (chunk) => ((output += chunk), to.write(chunk)));
    show(child.stdout, process.stdout);
    show(child.stderr, process.stderr);
    // The runners colour their summaries; the counts are read from the text without the colour codes.
    // deno-lint-ignore no-control-regex
    const uncoloured = () => output.replace(/\x1b\[[0-9;]*m/g, "");
    child.on("close", (code) => resolve({ code: code ?? 1, output: uncoloured() }));
  });
}

const count = (output, pattern) => [...output.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);

// Each runner's own summary, read from its output.
const runners = [
  {
    name: "node",
    command: process.execPath,
    args: ["--import", "tsx", "--test", ...testFiles, ...testsIn(join("test", "package"))],
    passed: /^# pass (\d+)$/gm,
    failed: /^# fail (\d+)$/gm,
  },
  {
    name: "deno",
    command: bin("deno"),
    args: ["test", "--allow-all", ...testFiles],
    passed: /\| (\d+) passed/g,
    failed: /\| (\d+) failed/g,
  },
  {
    name: "bun",
    command: bin("bun"),
    args: ["test", "--timeout", "30000", ...testFiles.map((f) => `./${f}`)],
    passed: /^\s*(\d+) pass$/gm,
    failed: /^\s*(\d+) fail$/gm,
  },
];

const fixture = join("test", "fixtures", "node-ws");
if (existsSync(join(fixture, "package.json")) && !existsSync(join(fixture, "node_modules"))) {
  const install = await run("npm", ["install", "--prefix", fixture, "--no-audit", "--no-fund"]);
  if (install.code !== 0) process.exit(install.code);
}

let passed = 0;
let failed = 0;
const checks = [
  ["tsc", bin("tsc"), ["-p", "tsconfig.json"]],
  ["deno check", bin("deno"), [
    "check",
    "src/runtime/deno.ts",
    "src/runtime/redis.ts",
    "src/app/main.ts",
    "bench/servers/floor-deno.ts",
  ]],
  ["deno lint", bin("deno"), ["lint"]],
  ["deno fmt --check", bin("deno"), ["fmt", "--check"]],
  ["deno doc --lint", process.execPath, [join("scripts", "doc-lint.mjs")]],
  // --allow-dirty: a developer's uncommitted changes are what they want checked.
  ["deno publish --dry-run", bin("deno"), ["publish", "--dry-run", "--allow-dirty"]],
];
for (const [name, command, args] of checks) {
  console.log(`\n== ${name}`);
  const { code } = await run(command, args);
  if (code !== 0) {
    console.log(`${name} failed`);
    failed++;
  }
}

const summary = [];
for (const runner of runners) {
  console.log(`\n== tests on ${runner.name}`);
  const { code, output } = await run(runner.command, runner.args);
  const p = count(output, runner.passed);
  let f = count(output, runner.failed);
  // A runner that crashed or failed without reporting a failure still counts as one.
  if (code !== 0 && f === 0) f = 1;
  summary.push(`${runner.name}: ${p} passed, ${f} failed`);
  passed += p;
  failed += f;
}

console.log(`\n${summary.join("\n")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
