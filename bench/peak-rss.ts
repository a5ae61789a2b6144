/**
 * Another process's resident memory, from Linux's `/proc`: its RSS now and its peak (VmHWM)
 * since the last `resetPeak` (writing 5 to `clear_refs` resets the high-water mark), so a
 * runner can read a server's peak over one phase without disturbing the server.
 */
import { readFileSync, writeFileSync } from "node:fs";

export interface RssReading {
  rss: number;
  peak: number;
}

function pidOf(pid: number | undefined): number {
  if (pid === undefined) throw new Error("the process has no pid (it did not start)");
  return pid;
}

/** Starts a new peak at the current RSS. */
export function resetPeak(pid: number | undefined): void {
  writeFileSync(`/proc/${pidOf(pid)}/clear_refs`, "5");
}

/** The RSS now and the peak since the last reset, in bytes. */
export function readRss(pid: number | undefined): RssReading {
  const status = readFileSync(`/proc/${pidOf(pid)}/status`, "utf8");
  const kb = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? Number.NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}
