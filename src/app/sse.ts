/**
 * A parser for server-sent events (the `text/event-stream` format of the HTML standard) over
 * a web `ReadableStream` of bytes: what an OpenAI-compatible endpoint streams with `stream: true`.
 */

/** One dispatched event: its `event` field (default "message") and its data lines joined by "\n". */
export interface SseEvent {
  event: string;
  data: string;
}

/** The stream broke the format, or a line grew past the limit. */
export class SseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SseError";
  }
}

/** A line longer than this is not an event stream we can use (a chat chunk is a few hundred characters). */
const MAX_LINE = 1 << 20;

/**
 * Yields each event of `body` as it completes (at its blank line). Comments (`:` lines), `id`
 * and `retry` fields are skipped; an event without data is not dispatched, as the standard says.
 * Line ends may be CRLF, LF or CR, split anywhere across chunks.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let data: string[] = [];
  let event = "";
  // A CR at the end of one chunk may be the first half of a CRLF split across two.
  let pendingCr = false;
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      finished = done;
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      if (pendingCr && buffer.startsWith("\n")) buffer = buffer.slice(1);
      pendingCr = false;
      // Lines are cut out by index and the rest kept once per chunk, so a chunk of many lines costs one pass.
      const lineEnd = /\r\n|\r|\n/g;
      let start = 0;
      for (let match = lineEnd.exec(buffer); match; match = lineEnd.exec(buffer)) {
        const line = buffer.slice(start, match.index);
        start = lineEnd.lastIndex;
        if (match[0] === "\r" && start === buffer.length && !done) pendingCr = true;
        if (line === "") {
          if (data.length > 0) yield { event: event || "message", data: data.join("\n") };
          data = [];
          event = "";
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
      }
      buffer = buffer.slice(start);
      if (buffer.length > MAX_LINE) throw new SseError(`an event-stream line is longer than ${MAX_LINE} characters`);
      if (done) break;
    }
    // The standard drops an event not ended by a blank line; so do we.
  } finally {
    // A consumer that stops early (or a format error) leaves no response body half read.
    if (!finished) reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
