/**
 * The layering rule of docs/architecture.md ("Layering"), checked on every import of src/:
 * jsonrpc ← transport ← sessions ← gateway ← runtime; the client depends on jsonrpc only; the
 * runtime reaches the client only through its public entry, the reference app only through the
 * package's entries; and only src/runtime/ and the app's CLI entry use anything but web
 * standards (Node's modules, runtime-specific packages).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { test } from "node:test";

const root = join(import.meta.dirname!, "..");

type Layer = "jsonrpc" | "transport" | "sessions" | "gateway" | "runtime" | "client" | "entry" | "app";

/** The layer of a file of src/ (a path relative to the repository). */
function layerOf(file: string): Layer {
  if (file === "src/mod.ts") return "entry";
  if (file === "src/stdio.ts") return "runtime";
  return file.split("/")[1] as Layer;
}

/** Which layers each layer may import. */
const MAY_IMPORT: Record<Layer, Layer[]> = {
  jsonrpc: ["jsonrpc"],
  transport: ["jsonrpc", "transport"],
  sessions: ["jsonrpc", "transport", "sessions"],
  gateway: ["jsonrpc", "transport", "sessions", "gateway"],
  runtime: ["jsonrpc", "transport", "sessions", "gateway", "runtime", "client"],
  client: ["jsonrpc", "client"],
  entry: ["jsonrpc", "transport", "sessions", "gateway"],
  app: ["app", "entry", "runtime", "client"],
};

/** The package entries (what the reference app, like any application, may import). */
const ENTRIES = [
  "src/mod.ts",
  "src/stdio.ts",
  "src/runtime/node.ts",
  "src/runtime/deno.ts",
  "src/runtime/bun.ts",
  "src/runtime/redis.ts",
  "src/runtime/stdio-client.ts",
];

/** Packages that are web-standard code, usable anywhere. */
const PORTABLE_PACKAGES = [
  "hono",
  "hono/ws",
  "valibot",
  "@valibot/to-json-schema",
  "@standard-schema/spec",
  "@opentelemetry/api",
];

/** Where Node's modules and runtime-specific packages may be imported. */
const mayUseRuntime = (file: string) =>
  file.startsWith("src/runtime/") || file === "src/app/main.ts" || file === "src/app/page-script.ts" ||
  file === "src/app/metrics.ts";

/** Why importing `specifier` from `file` breaks the rule, or undefined if it does not. */
export function violation(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) {
    if (PORTABLE_PACKAGES.includes(specifier) || mayUseRuntime(file)) return undefined;
    return `${file} imports ${specifier}: only src/runtime/ and the app's CLI entry use non-web-standard modules`;
  }
  const target = normalize(join(dirname(file), specifier)).replaceAll("\\", "/");
  const from = layerOf(file);
  const to = layerOf(target);
  if (!MAY_IMPORT[from].includes(to)) return `${file} (${from}) imports ${target} (${to})`;
  if (from === "runtime" && to === "client" && target !== "src/client/mod.ts") {
    return `${file} imports ${target}: runtime code uses only the client's public entry, src/client/mod.ts`;
  }
  // `src/runtime/*`: the app picks its runtime's entry (node.ts, deno.ts or bun.ts) by name.
  const entry = ENTRIES.includes(target) || target === "src/client/mod.ts" || target === "src/runtime/*";
  if (from === "app" && to !== "app" && !entry) {
    return `${file} imports ${target}: the app uses only the package's entries`;
  }
  return undefined;
}

/** Every import specifier of a source file: static imports and exports, and literal dynamic imports. */
function importsOf(text: string): string[] {
  const specifiers: string[] = [];
  for (const match of text.matchAll(/^\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/gm)) {
    specifiers.push(match[1]!);
  }
  for (const match of text.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) specifiers.push(match[1]!);
  for (const match of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) specifiers.push(match[1]!);
  // A template import (`../runtime/${name}.ts`) names one of a directory's modules: `dir/*`.
  for (const match of text.matchAll(/\bimport\(\s*`([^`$]+)\$\{/g)) specifiers.push(`${match[1]!}*`);
  return specifiers;
}

const sources = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" })
  .filter((file) => /\.(ts|js)$/.test(file))
  .map((file) => relative(root, join(root, "src", file)).replaceAll("\\", "/"));

test("every import in src/ follows the layering rule", () => {
  const problems = sources.flatMap((file) =>
    importsOf(readFileSync(join(root, file), "utf8"))
      .map((specifier) => violation(file, specifier))
      .filter((problem) => problem !== undefined)
  );
  assert.deepEqual(problems, []);
  assert.ok(sources.length > 40, `${sources.length} files read`);
});

test("the layering check catches imports against the rule", () => {
  assert.match(violation("src/client/client.ts", "../transport/bytes.ts")!, /client.*transport/);
  assert.match(violation("src/sessions/session.ts", "../gateway/connection.ts")!, /sessions.*gateway/);
  assert.match(violation("src/runtime/stdio-client.ts", "../client/client.ts")!, /public entry/);
  assert.match(violation("src/app/gateway.ts", "../gateway/gateway.ts")!, /app.*gateway/);
  assert.match(violation("src/app/gateway.ts", "../runtime/node-upgrade.ts")!, /package's entries/);
  assert.match(violation("src/gateway/hono.ts", "node:net")!, /web-standard/);
  assert.equal(violation("src/runtime/node.ts", "node:net"), undefined);
  assert.equal(violation("src/gateway/gateway.ts", "../sessions/registry.ts"), undefined);
  assert.deepEqual(
    importsOf(`import { a } from "./a.ts";\nexport type { B } from "../b.ts";\nawait import("./c.ts");`),
    [
      "./a.ts",
      "../b.ts",
      "./c.ts",
    ],
  );
});
