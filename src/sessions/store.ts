/**
 * Where the session registry keeps what must outlive a connection, in one process: who owns
 * each session, and its event log (the replay ring). `MemoryStore` is the implementation.
 *
 * It is synchronous because attach-and-replay must not interleave with live delivery. Sessions
 * shared by several nodes live in a `SharedStore` instead (shared-store.ts), which is
 * asynchronous and driven per session by `SharedLink`.
 */

/** Bounds of one session's replay ring. */
export interface ReplayLimits {
  /** Most events kept per session. Default 512. */
  maxEvents: number;
  /** Most bytes (of serialised frames) kept per session. Default 4 MiB. */
  maxBytes: number;
}

/** What `read` returns. */
export interface ReplayRead {
  /** The serialised event frames with seq > `afterSeq`, in order. */
  frames: string[];
  /**
   * The reader must refetch state: some events after `afterSeq` were evicted, or `afterSeq` is
   * past the latest event (the reader holds state this store never had: another ring, a node
   * that lost its data).
   */
  truncated: boolean;
}

/** The registry's persistent state. */
export interface SessionStore {
  /** Records a new session and the principal that owns it. */
  create(id: string, principal: string): void;
  /** The owner of `id`, or undefined when there is no such session. */
  owner(id: string): string | undefined;
  /** Appends the event numbered `seq` (one more than the last) as its serialised frame, then trims. */
  append(id: string, seq: number, frame: string): void;
  /** Every kept event with seq > `afterSeq`, and whether the reader missed any (`ReplayRead.truncated`). */
  read(id: string, afterSeq: number): ReplayRead;
  /** Forgets the session and its events. */
  delete(id: string): void;
}

/**
 * One session's events: a queue of frames numbered from `first`. Frames leave from the
 * front when the ring is over its bounds or its whole content is evicted.
 */
class Ring {
  frames: string[] = [];
  /** Index of the oldest kept frame in `frames` (shifting an array per event is O(n)). */
  head = 0;
  /** Seq of `frames[head]`; when empty, the seq the next event will get. */
  first = 1;
  bytes = 0;
  readonly principal: string;

  constructor(principal: string) {
    this.principal = principal;
  }

  get size(): number {
    return this.frames.length - this.head;
  }

  push(frame: string): void {
    this.frames.push(frame);
    this.bytes += frame.length;
  }

  /** Drops the oldest frame; returns its size. */
  shift(): number {
    const size = this.frames[this.head]!.length;
    this.frames[this.head++] = "";
    this.first++;
    this.bytes -= size;
    if (this.head > 64 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    return size;
  }

  /** Drops everything; returns the bytes freed. */
  clear(): number {
    const freed = this.bytes;
    this.first += this.size;
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
    return freed;
  }
}

/**
 * The in-memory store: a ring per session bounded by `limits`, and a byte budget across all
 * sessions that empties the least recently appended rings first. Bytes are counted in
 * UTF-16 code units of the serialised frames (equal to bytes for ASCII).
 */
export class MemoryStore implements SessionStore {
  #rings = new Map<string, Ring>();
  /** Rings holding events, least recently appended first (a Map keeps insertion order). */
  #recent = new Map<string, Ring>();
  #lastRecent: string | undefined;
  #limits: ReplayLimits;
  #budget: number;
  #bytes = 0;

  /** A store bounding each session's ring by `limits` and all of them together by `budgetBytes`. */
  constructor(limits: ReplayLimits, budgetBytes: number) {
    this.#limits = limits;
    this.#budget = budgetBytes;
  }

  /** Bytes held across every session. */
  get bytes(): number {
    return this.#bytes;
  }

  create(id: string, principal: string): void {
    this.#rings.set(id, new Ring(principal));
  }

  owner(id: string): string | undefined {
    return this.#rings.get(id)?.principal;
  }

  append(id: string, _seq: number, frame: string): void {
    // Seqs arrive contiguous, so the ring numbers its frames itself.
    const ring = this.#rings.get(id);
    if (!ring) return;
    ring.push(frame);
    this.#bytes += frame.length;
    const { maxEvents, maxBytes } = this.#limits;
    while (ring.size > maxEvents || (ring.bytes > maxBytes && ring.size > 0)) this.#bytes -= ring.shift();
    // Move to the most recent end only when it is not there already: a streaming session pays nothing.
    if (this.#lastRecent !== id) {
      this.#recent.delete(id);
      this.#recent.set(id, ring);
      this.#lastRecent = id;
    }
    if (this.#bytes > this.#budget) this.#evict();
  }

  read(id: string, afterSeq: number): ReplayRead {
    const ring = this.#rings.get(id);
    if (!ring) return { frames: [], truncated: false };
    const from = Math.max(afterSeq + 1, ring.first);
    const frames = ring.frames.slice(ring.head + (from - ring.first));
    // `ring.first + ring.size` is the seq the next event will get.
    return { frames, truncated: afterSeq + 1 < ring.first || afterSeq >= ring.first + ring.size };
  }

  delete(id: string): void {
    const ring = this.#rings.get(id);
    if (!ring) return;
    this.#bytes -= ring.bytes;
    this.#rings.delete(id);
    this.#recent.delete(id);
    if (this.#lastRecent === id) this.#lastRecent = undefined;
  }

  /** Empties whole rings, least recently appended first, until the total is within budget. */
  #evict(): void {
    for (const [id, ring] of this.#recent) {
      if (this.#bytes <= this.#budget) return;
      this.#bytes -= ring.clear();
      this.#recent.delete(id);
      if (this.#lastRecent === id) this.#lastRecent = undefined;
    }
  }
}
