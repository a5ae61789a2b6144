/**
 * The transport contract: what a connection needs from the thing that carries its frames.
 * `SocketTransport` implements it over any standard-WebSocket-like socket; stdio reuses it
 * over an NDJSON socket.
 */

/** The least a socket must offer: the standard WebSocket's `send`, `close` and `readyState`. */
export interface TransportSocket {
  /** Hands one text frame to the socket. Throws if the socket cannot take it. */
  send(text: string): void;
  close(code?: number, reason?: string): void;
  /** 0 connecting, 1 open, 2 closing, 3 closed (as the standard WebSocket). */
  readonly readyState: number;
  /** Bytes handed to `send` but not yet written out, where the runtime tells. */
  readonly bufferedAmount?: number;
  /** Runs `flush` so the frames it sends leave in as few writes as the runtime allows. */
  cork?(flush: () => void): void;
  /**
   * True while the runtime itself holds the socket corked (Bun, inside the socket's `message`
   * handler): a frame sent then leaves in one write with the rest, so it needs no queueing.
   */
  readonly corked?: boolean;
  /**
   * Hands the socket the transport that writes to it, for a socket the runtime may close on its
   * own (Node's `ws` does, from inside its frame parser, for a frame over its size cap or invalid
   * UTF-8): it flushes the transport's queue first, so earlier answers go out before the close.
   */
  bind?(transport: QueueFlusher): void;
}

/** What `TransportSocket.bind` gets: a way to send the transport's queued frames now. */
export interface QueueFlusher {
  /** Hands every queued frame to the socket now (nothing if closed or empty). */
  flushQueued(): void;
}

/** Why a transport closed itself; the connection logs it and tears down. */
export type TransportFailure = "send_failed" | "slow_consumer" | "send_stalled";

/** A connection's outgoing side: ordered, batched per tick, never throwing on a dead socket. */
export interface Transport {
  /**
   * Serialises `message` and queues it; the queue is flushed once per tick, in order.
   * Returns false once the transport is closed. Never throws for socket trouble; throws
   * only if `message` cannot be serialised (JSON.stringify's own error), before queueing.
   */
  write(message: unknown): boolean;
  /** As `write`, for a frame that is already serialised. */
  writeText(text: string): boolean;
  /** Flushes what is queued, then closes the socket with `code`. Idempotent. */
  close(code?: number, reason?: string): void;
  readonly closed: boolean;
}

/** WebSocket close codes the gateway uses (docs/protocol.md, Close codes). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  Policy: 1008,
  TooBig: 1009,
  Internal: 1011,
  TryAgainLater: 1013,
} as const;

/** The standard WebSocket surface: `send`, `close`, `readyState`. */
export interface WebSocketLike {
  send(text: string): void;
  close(code?: number, reason?: string): void;
  readonly readyState: number;
}

/**
 * A `TransportSocket` over a standard-WebSocket-like object, with `bufferedAmount` read from
 * `raw` (the runtime's own socket) where it has one.
 */
export function standardSocket(ws: WebSocketLike, raw: { bufferedAmount?: unknown } = {}): TransportSocket {
  // Methods, not arrow properties: a transpiler that keeps function names (tsx) gives every
  // arrow assigned to a property its own property store, ~300 bytes per connection each.
  return {
    send(text) {
      ws.send(text);
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    get readyState() {
      return ws.readyState;
    },
    get bufferedAmount() {
      return typeof raw.bufferedAmount === "number" ? raw.bufferedAmount : undefined;
    },
  };
}
