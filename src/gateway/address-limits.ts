/**
 * Admission per client address (docs/architecture.md, Security): connection attempts per
 * second and open connections. A client that reconnects in a loop gets a fresh rate bucket for
 * its messages with every connection; these limits are what holds it back.
 */

/** The most addresses whose attempt buckets are kept; beyond it the least recently seen go. */
const MAX_ADDRESSES = 10_000;

/** One address's attempt bucket: tokens left, and when it was last looked at. */
interface Bucket {
  tokens: number;
  at: number;
}

/** Open connections and connection attempts per client address. */
export class AddressLimits {
  readonly #perSecond: number;
  readonly #maxOpen: number;
  /** Least recently seen first; an address idle for a second has a full bucket, so it can go. */
  readonly #buckets = new Map<string, Bucket>();
  readonly #open = new Map<string, number>();

  /** `perSecond` attempts a second (a bucket of one second's worth) and `maxOpen` connections per address. */
  constructor(perSecond: number, maxOpen: number) {
    this.#perSecond = perSecond;
    this.#maxOpen = maxOpen;
  }

  /**
   * Counts an attempt from `address` at `now` (ms) and answers the HTTP status that refuses it:
   * 429 over the attempt rate, 503 at the open-connection cap; undefined admits it.
   */
  admit(address: string, now: number): 429 | 503 | undefined {
    let bucket = this.#buckets.get(address);
    if (bucket) {
      this.#buckets.delete(address);
      bucket.tokens = Math.min(this.#perSecond, bucket.tokens + ((now - bucket.at) * this.#perSecond) / 1_000);
      bucket.at = now;
    } else bucket = { tokens: this.#perSecond, at: now };
    this.#buckets.set(address, bucket);
    this.#forgetIdle(now);
    if (bucket.tokens < 1) return 429;
    bucket.tokens -= 1;
    return (this.#open.get(address) ?? 0) >= this.#maxOpen ? 503 : undefined;
  }

  /** A connection from `address` opened. */
  opened(address: string): void {
    this.#open.set(address, (this.#open.get(address) ?? 0) + 1);
  }

  /** A connection from `address` closed. */
  closed(address: string): void {
    const left = (this.#open.get(address) ?? 1) - 1;
    if (left === 0) this.#open.delete(address);
    else this.#open.set(address, left);
  }

  /** Drops buckets full again (idle a second), and the oldest beyond MAX_ADDRESSES. */
  #forgetIdle(now: number): void {
    for (const [address, bucket] of this.#buckets) {
      if (this.#buckets.size <= MAX_ADDRESSES && now - bucket.at < 1_000) return;
      this.#buckets.delete(address);
    }
  }
}

/** Whether `address` is a loopback address (IPv4 127/8, IPv6 ::1, or IPv4-mapped 127/8). */
export function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127.");
}

/** The address part of a peer (`203.0.113.7:51234` → `203.0.113.7`, `::1:51234` → `::1`). */
export function addressOf(peer: string): string {
  const colon = peer.lastIndexOf(":");
  return colon === -1 ? peer : peer.slice(0, colon);
}
