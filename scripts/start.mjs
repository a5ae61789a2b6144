#!/usr/bin/env node
// `npm start` and `bun run start`: the reference agent app (src/app/main.ts) on the runtime
// that ran the script — Node (through tsx) for npm, Bun for bun, which would otherwise hand a
// script's `node` or `tsx` to Node too. (`deno task start` runs it on Deno, from deno.json.)
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const app = fileURLToPath(new URL("../src/app/main.ts", import.meta.url));

if (process.env.npm_config_user_agent?.startsWith("bun/") && process.env.npm_execpath) {
  const child = spawn(process.env.npm_execpath, [app, ...process.argv.slice(2)], { stdio: "inherit" });
  // Ctrl-C reaches the app itself (same process group); a SIGTERM sent to this process is passed on.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(app);
}
