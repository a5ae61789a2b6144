/**
 * Newline-delimited JSON over web streams, for stdio: one message per line each way.
 */
import { exceedsBytes } from "../jsonrpc/bytes.ts";
import type { FrameSink, FrameSocket } from "./transport.ts";

const encoder = new TextEncoder();

/**
 * A `FrameSocket` over a pair of byte streams, one frame per line each way. `read` delivers the
 * input's lines to the attached sink; each frame sent is one line to `output`, and a corked flush
 * one chunk (one write to the pipe) however many frames it holds. A write error ends it (the sink
 * hears 1006); `close` ends it once every accepted write has completed (1000), leaving `output` open.
 */
export class NdjsonSocket implements FrameSocket {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #sink: FrameSink | undefined;
  #corked: string[] | undefined;
  #pending = 0;
  #writes: Promise<void> = Promise.resolve();
  #open = true;

  /** A socket writing to `output` (which it holds until closed). */
  constructor(output: WritableStream<Uint8Array>) {
    this.#writer = output.getWriter();
  }

  /** Bytes handed to the stream whose writes have not completed. */
  get bufferedAmount(): number {
    return this.#pending;
  }

  attach(sink: FrameSink): void {
    this.#sink = sink;
  }

  /**
   * Delivers each line of `input` to the sink (blank ones too: they count as messages); a line
   * over `maxLineBytes` is skipped unread and reported as `oversized`. Resolves at end of input.
   */
  read(input: ReadableStream<Uint8Array>, maxLineBytes: number): Promise<void> {
    return readLines(input, maxLineBytes, (line) => this.#sink?.text(line), () => this.#sink?.oversized());
  }

  send(text: string): void {
    if (!this.#open) throw new Error("stdio output is closed");
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
      if (lines.length > 0 && this.#open) this.#write(lines.join("\n") + "\n");
    }
  }

  /** Stops writing; once every accepted write has completed, releases `output` and tells the sink. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#writes = this.#writes.then(() => {
      this.#writer.releaseLock();
      this.#end(1000);
    });
  }

  /** Resolves once closed and every accepted write has completed. */
  get done(): Promise<void> {
    return this.#writes;
  }

  #write(line: string): void {
    const bytes = encoder.encode(line);
    this.#pending += bytes.length;
    this.#writes = this.#writer.write(bytes).then(
      () => {
        this.#pending -= bytes.length;
      },
      () => {
        this.#open = false;
        this.#end(1006);
      },
    );
  }

  #end(code: number): void {
    const sink = this.#sink;
    this.#sink = undefined;
    sink?.ended(code);
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
