/**
 * Round-trip times in log-spaced buckets, 64 per doubling (so within 1.1%): a few hundred
 * numbers to pass between processes whatever the count of samples, merged by adding.
 */
const PER_DOUBLING = 64;
const BUCKETS = 28 * PER_DOUBLING; // up to 2^28 µs, far past any client's time limit

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  total = 0;

  record(us: number): void {
    const bucket = Math.ceil(Math.log2(Math.max(us, 1)) * PER_DOUBLING);
    this.counts[Math.min(bucket, BUCKETS - 1)]!++;
    this.total++;
  }

  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
  }

  /** The upper edge (µs) of the bucket holding quantile `q` (0 < q < 1). */
  quantile(q: number): number {
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return 2 ** (i / PER_DOUBLING);
    }
    return Number.NaN;
  }

  /** Sparse `[bucket, count]` pairs. */
  toJSON(): [number, number][] {
    const pairs: [number, number][] = [];
    this.counts.forEach((count, bucket) => count && pairs.push([bucket, count]));
    return pairs;
  }

  static fromJSON(pairs: [number, number][]): Histogram {
    const histogram = new Histogram();
    for (const [bucket, count] of pairs) {
      histogram.counts[bucket] = count;
      histogram.total += count;
    }
    return histogram;
  }
}
