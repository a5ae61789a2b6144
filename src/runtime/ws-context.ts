/**
 * Hono's `WSContext` over a `ws` socket, for the other WebSocket routes of an app served on Node.
 * The context wraps a class instance, not an object literal: a literal with a getter and
 * arrow properties measured ~350 bytes more per idle connection (V8 keeps it in dictionary
 * mode, and a transpiler that keeps function names gives each arrow its own property store).
 */
import { WSContext, type WSContextInit, type WSReadyState } from "hono/ws";

/** What Node's `ws` and Deno's `WebSocket` both offer. */
export interface RawWebSocket {
  send(data: string | ArrayBuffer | Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  readonly readyState: number;
  readonly protocol: string;
}

class ContextInit<T extends RawWebSocket> implements WSContextInit<T> {
  readonly raw: T;
  readonly protocol: string;

  constructor(raw: T) {
    this.raw = raw;
    this.protocol = raw.protocol;
  }

  send(data: string | ArrayBuffer | Uint8Array<ArrayBuffer>): void {
    this.raw.send(data);
  }

  close(code?: number, reason?: string): void {
    this.raw.close(code, reason);
  }

  get readyState(): WSReadyState {
    return this.raw.readyState as WSReadyState;
  }
}

/** The `WSContext` handlers see for `raw`. */
export function socketContext<T extends RawWebSocket>(raw: T): WSContext<T> {
  return new WSContext(new ContextInit(raw));
}
