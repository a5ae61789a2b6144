/** Where and with what a run was measured: date, machine, load, runtime and library versions. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { BIN } from "./plan.ts";

const firstLine = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8" }).split("\n")[0]!.trim();
/** The version of an installed npm package. */
export const packageVersion = (name: string) =>
  JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")).version as string;

export function describeEnvironment(): string[] {
  const cpuModel = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
  return [
    `Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; load average at start ${
      loadavg()[0]!.toFixed(2)
    }.`,
    `Machine: ${cpus().length} cores, ${cpuModel}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB.`,
    `Versions: node ${process.version}, ${firstLine(BIN.deno, ["--version"])}, bun ${
      firstLine(BIN.bun, ["--version"])
    }, ` +
    `hono ${packageVersion("hono")}, @hono/node-server ${packageVersion("@hono/node-server")}, ws ${
      packageVersion("ws")
    }, ` +
    `rpc-websockets ${packageVersion("rpc-websockets")}, json-rpc-2.0 ${packageVersion("json-rpc-2.0")}.`,
  ];
}
