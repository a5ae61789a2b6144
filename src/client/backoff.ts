/**
 * Reconnect delays with "full jitter": each delay is uniform in [0, min(cap, base × 2^attempt)],
 * so clients cut off together do not come back together. The attempt count resets once a
 * connection has stayed up for `stableMs`.
 */

/** Reconnect timing. */
export interface BackoffOptions {
  /** First ceiling, in ms. Default 250. */
  baseMs?: number;
  /** Largest ceiling, in ms. Default 10 s. */
  capMs?: number;
  /** A connection up this long resets the ceiling to `baseMs`. Default 5 s. */
  stableMs?: number;
}

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly stableMs: number;
  #attempt = 0;

  constructor({ baseMs = 250, capMs = 10_000, stableMs = 5_000 }: BackoffOptions = {}) {
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.stableMs = stableMs;
  }

  /** The next delay, in ms. */
  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.random() * ceiling;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
