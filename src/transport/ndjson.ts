/**
 * Newline-delimited JSON over web streams, for stdio: one message per line each way.
 */
import { exceedsBytes } from "../jsonrpc/bytes.ts";
import type { TransportSocket } from "./transport.ts";

const encoder = new TextEncoder();

/**
 * A `TransportSocket` that writes each frame as one line to `output`. A corked flush
 * becomes one chunk (one write to the pipe) however many frames it holds.
 * Write errors arrive asynchronously; `onError` is told and the socket reads as closed.
 */
export class NdjsonSocket implements TransportSocket {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #onError: (error: unknown) => void;
  #corked: string[] | undefined;
  #pending = 0;
  #writes: Promise<void> = Promise.resolve();
  readyState = 1;

  constructor(output: WritableStream<Uint8Array>, onError: (error: unknown) => void) {
    this.#writer = output.getWriter();
    this.#onError = onError;
  }

  /** Bytes handed to the stream whose writes have not completed. */
  get bufferedAmount(): number {
    return this.#pending;
  }

  send(text: string): void {
    if (this.readyState !== 1) throw new Error("stdio output is closed");
    if (this.#corked) this.#corked.push(text);
    else this.#write(text + "\n");
  }

  cork(flush: () => void): void {
    this.#corked = [];
    try {
      flush();
    } finally {
      const lines = this.#corked;
      this.#corked = undefined;
      if (lines.length > 0 && this.readyState === 1) this.#write(lines.join("\n") + "\n");
    }
  }

  /** Stops writing; resolves once every accepted write has completed. Leaves `output` open. */
  close(): Promise<void> {
    if (this.readyState === 3) return this.#writes;
    this.readyState = 3;
    const done = this.#writes.then(() => this.#writer.releaseLock());
    this.#writes = done;
    return done;
  }

  #write(line: string): void {
    const bytes = encoder.encode(line);
    this.#pending += bytes.length;
    this.#writes = this.#writer.write(bytes).then(
      () => {
        this.#pending -= bytes.length;
      },
      (error: unknown) => {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.#onError(error);
      },
    );
  }
}

/**
 * Reads `input` as lines of UTF-8 text and calls `onLine` for each. A line longer than
 * `maxLineBytes` is not held: `onOversize` is called once and the rest of it skipped.
 * Resolves at end of input (a last line without a newline counts).
 */
export async function readLines(
  input: ReadableStream<Uint8Array>,
  maxLineBytes: number,
  onLine: (line: string) => void,
  onOversize: () => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  let skipping = false;
  const reader = input.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
        if (!skipping) {
          const line = partial + text.slice(start, nl);
          if (exceedsBytes(line, maxLineBytes)) onOversize();
          else onLine(line);
        }
        partial = "";
        skipping = false;
        start = nl + 1;
      }
      if (!skipping) {
        partial += text.slice(start);
        if (exceedsBytes(partial, maxLineBytes)) {
          partial = "";
          skipping = true;
          onOversize();
        }
      }
      if (done) break;
    }
  } finally {
    reader.releaseLock();
  }
  if (partial !== "" && !skipping) onLine(partial);
}
