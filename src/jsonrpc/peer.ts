/**
 * What every JSON-RPC peer here does on both sides of the wire, in one place: awaiting the
 * answers to requests it sent (`PendingRequests`: ids, timeouts, abort signals, settling on
 * close), and turning what a handler of a received request threw into the error it answers
 * (`answerError`). The gateway's connections, its sessions' server → client requests and the
 * client all use them; each keeps its own framing and ids.
 */
import { ErrorCode, type ErrorObject, RpcError } from "./errors.ts";

/** How a pending request may be given up before its answer. */
export interface GiveUpOptions {
  /** After this long (ms); `undefined` or `Infinity`: never. */
  timeoutMs?: number;
  /** When this aborts. */
  signal?: AbortSignal;
}

/** Why a pending request was given up. */
export type GiveUpReason = "timeout" | "abort";

/**
 * Runs (once) when a request is given up, after it was forgotten: it tells the other side if
 * it must (`rpc.cancel`, `request.cancel`) and answers the error the caller's promise rejects with.
 */
export type GiveUp<K, T> = (key: K, request: T, why: GiveUpReason, reason: unknown) => unknown;

interface Entry<T> {
  readonly request: T;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Clears the timeout and the abort listener. */
  dispose(): void;
}

/** Requests sent and awaiting their answers, by key (the request id), in the order they were added. */
export class PendingRequests<K, T> {
  readonly #entries = new Map<K, Entry<T>>();
  readonly #giveUp: GiveUp<K, T>;

  /** `giveUp` decides what a request given up by its timeout or signal does and rejects with. */
  constructor(giveUp: GiveUp<K, T>) {
    this.#giveUp = giveUp;
  }

  /** Requests awaiting an answer. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Awaits the answer to `key`: settled by `answer`, or `fail`, or given up by `options`. A
   * signal already aborted gives up at once. The caller sends the request itself.
   */
  add(key: K, request: T, options: GiveUpOptions = {}): Promise<unknown> {
    const { timeoutMs, signal } = options;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.#givenUp(key, "abort", signal!.reason);
      const timer = timeoutMs === undefined || timeoutMs === Infinity
        ? undefined
        : setTimeout(() => this.#givenUp(key, "timeout", undefined), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#entries.set(key, {
        request,
        resolve,
        reject,
        dispose: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      });
      if (signal?.aborted) onAbort();
    });
  }

  /** The request awaiting `key`'s answer, if any. */
  get(key: K): T | undefined {
    return this.#entries.get(key)?.request;
  }

  /** Every request awaiting an answer, oldest first. */
  *requests(): IterableIterator<[K, T]> {
    for (const [key, entry] of this.#entries) yield [key, entry.request];
  }

  /** Settles `key` with its answer: its result, or its error as an `RpcError`. False if it is not pending. */
  answer(key: K, result: unknown, error?: ErrorObject): boolean {
    const entry = this.#take(key);
    if (!entry) return false;
    if (error) entry.reject(new RpcError(error.code, error.message, error.data));
    else entry.resolve(result);
    return true;
  }

  /** Rejects `key` with `error`. False if it is not pending. */
  fail(key: K, error: unknown): boolean {
    const entry = this.#take(key);
    entry?.reject(error);
    return entry !== undefined;
  }

  /** Rejects every pending request with `error` (the connection or session is gone). */
  failAll(error: unknown): void {
    for (const key of [...this.#entries.keys()]) this.fail(key, error);
  }

  #givenUp(key: K, why: GiveUpReason, reason: unknown): void {
    const entry = this.#take(key);
    if (entry) entry.reject(this.#giveUp(key, entry.request, why, reason));
  }

  #take(key: K): Entry<T> | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    entry.dispose();
    return entry;
  }
}

/** The error of a handler that threw something other than an `RpcError`: details stay on the server. */
export const INTERNAL_ERROR: ErrorObject = { code: ErrorCode.InternalError, message: "Internal error" };

/**
 * The error object answering a request whose handler threw `error`: an `RpcError`'s own,
 * else -32603 without details (`unexpected` sees the error first, to log it).
 */
export function answerError(error: unknown, unexpected?: (error: unknown) => void): ErrorObject {
  if (error instanceof RpcError) return error.toJSON();
  unexpected?.(error);
  return INTERNAL_ERROR;
}

/** The error object answering a request for a method nobody handles. */
export function methodNotFound(method: string): ErrorObject {
  return { code: ErrorCode.MethodNotFound, message: "Method not found", data: { method } };
}
