/**
 * The frame-socket contract (docs/architecture.md, "A frame's way in"): what every runtime's
 * socket, Hono's `WSContext` and stdio offer a connection, both ways. Out: `send` and `close`,
 * with `cork` and `bufferedAmount` where the runtime has them. In: `attach(sink)`, after which
 * the socket hands every frame and its close to the sink.
 */

/** What a socket delivers to: the connection. */
export interface FrameSink {
  /** A text frame arrived. */
  text(frame: string): void;
  /** A binary frame arrived (JSON-RPC travels in text frames: it is answered -32600). */
  binary(): void;
  /** A frame over the size cap was skipped unread (stdio: a pipe has no close code, so it is answered -32600). */
  oversized(): void;
  /** The socket closed (`code` as the runtime reports it) or failed: nothing more arrives. Once. */
  ended(code: number): void;
  /**
   * Sends what is queued now. For a socket the runtime closes on its own (Node's `ws` does, from
   * inside its frame parser, for a frame over its size cap or invalid UTF-8): called first, so
   * answers to earlier requests go out before the close.
   */
  flushQueued(): void;
}

/** A socket carrying text frames both ways. */
export interface FrameSocket {
  /** Hands one text frame to the socket. Throws if the socket cannot take it. */
  send(text: string): void;
  /** Starts the closing handshake (or ends the stream). */
  close(code?: number, reason?: string): void;
  /** Bytes handed to `send` but not yet written out, where the runtime tells. */
  readonly bufferedAmount?: number;
  /** Runs `flush` so the frames it sends leave in as few writes as the runtime allows. */
  cork?(flush: () => void): void;
  /**
   * True while the runtime itself holds the socket corked (Bun, inside the socket's `message`
   * handler): a frame sent then leaves in one write with the rest, so it needs no queueing.
   */
  readonly corked?: boolean;
  /** From now on, delivers every frame and the close to `sink`. Called once, when the connection opens. */
  attach(sink: FrameSink): void;
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
