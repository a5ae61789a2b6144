/** Self time per function in a `.cpuprofile` (the Chrome format Node, Deno and Bun all write). */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  /** Function name and where it is defined (path relative to the working directory, 1-based line). */
  name: string;
  ms: number;
  /** Share of the window's samples that were not idle. */
  share: number;
}

function describe({ functionName, url, lineNumber }: ProfileNode["callFrame"]): string {
  const path = url.replace(/^file:\/\//, "").replace(`${process.cwd()}/`, "");
  return `${functionName || "(anonymous)"}${path ? ` ${path}:${lineNumber + 1}` : ""}`;
}

/**
 * Functions by self time within `[from, to]` (µs), highest first; idle samples are left out.
 * Marks on the monotonic clock (as large as the profile's own times) are taken as they are;
 * smaller ones count from the profile's start (see bench/servers/control.ts).
 */
export function selfTimes(profile: CpuProfile, from: number, to: number): SelfTime[] {
  const base = from >= profile.startTime ? 0 : profile.startTime;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byName = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const elapsed = profile.timeDeltas[i]!;
    at += elapsed;
    if (at < base + from || at > base + to) continue;
    const node = nodes.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === "(idle)") continue;
    const name = describe(node.callFrame);
    byName.set(name, (byName.get(name) ?? 0) + elapsed);
    busy += elapsed;
  }
  return [...byName].map(([name, us]) => ({ name, ms: us / 1000, share: us / busy })).sort((a, b) => b.ms - a.ms);
}
