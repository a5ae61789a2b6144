/**
 * Server → client requests (`approval` and the like): the handlers, and the answers to the
 * last requests served, so that a request the gateway sends again on resume reaches its
 * handler once and is answered from memory.
 */
import { errorResponse, type Id, resultResponse } from "../jsonrpc/message.ts";
import { answerError, methodNotFound } from "../jsonrpc/peer.ts";

/** A handler for a server → client request; what it returns (or throws as `RpcError`) is the reply. */
// deno-lint-ignore no-explicit-any -- a server request's params are untyped: handlers read them without casts
export type RequestHandler = (params: any, context: { signal: AbortSignal; id: string }) => unknown;

/** A server request seen: its reply once there is one, and how to cancel its handler. */
interface Served {
  reply?: string;
  controller: AbortController;
}

/** How many answered server requests to remember. */
const SERVED_MEMORY = 1_000;

/** The handlers of server requests, and the requests served. */
export class ServedRequests {
  #handlers = new Map<string, RequestHandler>();
  #served = new Map<string, Served>();
  /** Sends a reply frame if the client is connected (else it goes when the request comes again). */
  #send: (reply: string) => void;

  /** `send` delivers a reply frame now, if it can. */
  constructor(send: (reply: string) => void) {
    this.#send = send;
  }

  /** Handles requests for `method`; returns the function that removes this handler. */
  handle(method: string, handler: RequestHandler): () => void {
    this.#handlers.set(method, handler);
    return () => {
      if (this.#handlers.get(method) === handler) this.#handlers.delete(method);
    };
  }

  /**
   * A request arrived. Seen before (re-sent after a reconnect): its reply is sent again, or
   * will be when its handler is done. New: its handler runs (-32601 without one, -32603 or its
   * `RpcError` if it throws).
   */
  serve(id: Id, method: string, params: unknown): void {
    const key = String(id);
    const seen = this.#served.get(key);
    if (seen) {
      if (seen.reply) this.#send(seen.reply);
      return;
    }
    const served: Served = { controller: new AbortController() };
    this.#served.set(key, served);
    this.#forgetOld();
    const reply = (text: string) => {
      if (served.controller.signal.aborted) return; // cancelled by the server: nobody waits for it
      served.reply = text;
      this.#send(text);
    };
    const handler = this.#handlers.get(method);
    if (!handler) return reply(errorResponse(id, methodNotFound(method)));
    Promise.resolve()
      .then(() => handler(params, { signal: served.controller.signal, id: key }))
      .then(
        (result) => reply(resultResponse(id, result ?? null)),
        (error: unknown) => reply(errorResponse(id, answerError(error))),
      );
  }

  /** The server gave up on a request (`request.cancel {id, reason}`): abort its handler and forget it. */
  cancel(cancel: { id?: unknown } | undefined): void {
    const key = String(cancel?.id);
    this.#served.get(key)?.controller.abort(cancel);
    this.#served.delete(key);
  }

  #forgetOld(): void {
    if (this.#served.size <= SERVED_MEMORY) return;
    for (const [key, served] of this.#served) {
      if (this.#served.size <= SERVED_MEMORY) return;
      if (served.reply) this.#served.delete(key);
    }
  }
}
