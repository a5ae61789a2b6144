/**
 * Every run's samples, and the figures the report shows: medians over runs, and ratios and
 * differences taken within each run (against the floor, or another server, measured in that
 * same run) before their median is taken.
 */
import type { Runtime, Workload } from "./plan.ts";
import type { Sample } from "./workloads.ts";

export type RunSamples = Map<string, Sample>;

export const sampleKey = (runtime: Runtime, server: string, workload: Workload) => `${runtime}/${server}/${workload}`;

/** The median of `values`; undefined when there are none. */
export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export class Figures {
  constructor(readonly runs: readonly RunSamples[]) {}

  /** Median over runs of one figure; undefined if no run measured it. */
  value(runtime: Runtime, server: string, workload: Workload, metric: string): number | undefined {
    return median(this.#perRun(runtime, server, workload, metric, undefined, (a) => a));
  }

  /** Median over runs of `server`'s figure divided by `reference`'s in the same run. */
  ratio(runtime: Runtime, server: string, workload: Workload, metric: string, reference = "floor"): number | undefined {
    return median(this.ratios(runtime, server, workload, metric, reference));
  }

  /** Median over runs of `server`'s figure minus `reference`'s in the same run. */
  difference(
    runtime: Runtime,
    server: string,
    workload: Workload,
    metric: string,
    reference = "floor",
  ): number | undefined {
    return median(this.differences(runtime, server, workload, metric, reference));
  }

  /** Each run's ratio of `server`'s figure to `reference`'s, in run order. */
  ratios(runtime: Runtime, server: string, workload: Workload, metric: string, reference = "floor"): number[] {
    return this.#perRun(runtime, server, workload, metric, reference, (a, b) => a / b!);
  }

  /** Each run's difference between `server`'s figure and `reference`'s, in run order. */
  differences(runtime: Runtime, server: string, workload: Workload, metric: string, reference = "floor"): number[] {
    return this.#perRun(runtime, server, workload, metric, reference, (a, b) => a - b!);
  }

  #perRun(
    runtime: Runtime,
    server: string,
    workload: Workload,
    metric: string,
    reference: string | undefined,
    combine: (a: number, b?: number) => number,
  ): number[] {
    const values: number[] = [];
    for (const run of this.runs) {
      const a = run.get(sampleKey(runtime, server, workload))?.[metric];
      const b = reference === undefined ? undefined : run.get(sampleKey(runtime, reference, workload))?.[metric];
      if (a !== undefined && (reference === undefined || b !== undefined)) values.push(combine(a, b));
    }
    return values;
  }
}
