/** What a test connection has received and no test has taken yet: taking waits, bounded, for a match. */
export class Inbox<T> {
  /** Items not yet taken, in order of arrival. */
  readonly items: T[] = [];
  /** Every waiting `take` (several may wait on one inbox, each for its own match). */
  #waiting = new Set<() => void>();

  /** Adds an item and wakes a waiting `take`. */
  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  /** Wakes the waiting `take`s without an item (the connection ended), so they look at their `stop` again. */
  wake(): void {
    for (const wake of [...this.#waiting]) wake();
  }

  /**
   * Takes the first item that matches, waiting up to `timeoutMs` for one. While none matches,
   * rejects with `stop()`'s reason once it gives one, or with `timeout()` at the deadline.
   */
  async take(
    match: (item: T) => boolean,
    timeoutMs: number,
    timeout: () => string,
    stop: () => string | undefined = () => undefined,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.items.findIndex(match);
      if (at !== -1) return this.items.splice(at, 1)[0]!;
      const stopped = stop();
      if (stopped !== undefined) throw new Error(stopped);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(timeout());
      let timer: ReturnType<typeof setTimeout> | undefined;
      let wake!: () => void;
      await new Promise<void>((resolve) => {
        wake = resolve;
        this.#waiting.add(wake);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#waiting.delete(wake);
    }
  }
}
