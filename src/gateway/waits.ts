/** Waiting without polling: for a count to reach zero, within a deadline. */

/** Resolves once `done` has, or `ms` have passed, whichever comes first; the timer never outlives it. */
export async function atMost(done: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** A count of things in progress, and a promise of the moment it is back to zero. */
export class Count {
  #value = 0;
  #zero: (() => void)[] = [];

  /** How many are in progress. */
  get value(): number {
    return this.#value;
  }

  /** One more started. */
  up(): void {
    this.#value++;
  }

  /** One finished. */
  down(): void {
    if (--this.#value > 0) return;
    const waiting = this.#zero;
    this.#zero = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves when the count is zero (at once if it is). */
  zero(): Promise<void> {
    return this.#value === 0 ? Promise.resolve() : new Promise((resolve) => this.#zero.push(resolve));
  }
}
