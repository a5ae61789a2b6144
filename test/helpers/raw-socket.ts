/**
 * A raw WebSocket client over `node:net` (RFC 6455 by hand), for fault tests: it writes the
 * upgrade request and every frame byte for byte, so a test can send what a real client never
 * would (invalid UTF-8, a frame over the server's size limit, a forged `Host`) and read the
 * handshake's status and headers as the server wrote them; and a peer that goes silent after
 * its upgrade request.
 */
import { connect, type Socket } from "node:net";
import { Inbox } from "./inbox.ts";
import { within } from "./runtime.ts";

/** Frame opcodes (RFC 6455 §5.2). */
export const Opcode = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

const encoder = new TextEncoder();

/** One client frame: FIN as given, masked with a random key (RFC 6455 §5.3). */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = new Uint8Array(header + 4 + length);
  const view = new DataView(frame.buffer);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65_536) {
    frame[1] = 0x80 | 126;
    view.setUint16(2, length);
  } else {
    frame[1] = 0x80 | 127;
    view.setBigUint64(2, BigInt(length));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  frame.set(mask, header);
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/**
 * A WebSocket upgrade request for `url`, its blank line included. `headers` add to or replace
 * the defaults (`Host` included), whatever the case of their names.
 */
function upgradeRequest(url: URL, headers: Record<string, string> = {}): string {
  const fields: Record<string, string> = {
    host: url.host,
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64"),
  };
  for (const [name, value] of Object.entries(headers)) fields[name.toLowerCase()] = value;
  return [`GET ${url.pathname}${url.search} HTTP/1.1`, ...Object.entries(fields).map(([n, v]) => `${n}: ${v}`), "", ""]
    .join("\r\n");
}

/**
 * A half-open peer: a raw TCP client that sends an upgrade request and then never reads nor
 * writes again (no pong, no close frame, no FIN), as a client whose network vanished.
 * Resolves once the request is written; call `destroy()` at the end.
 */
export function silentPeer(wsUrl: string): Promise<{ destroy(): void }> {
  const url = new URL(wsUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.pause();
      socket.write(upgradeRequest(url), () => resolve({ destroy: () => socket.destroy() }));
    });
    socket.once("error", reject);
  });
}

/** One raw connection: the handshake's answer, then frames both ways. */
export class RawSocket {
  /** The handshake's HTTP status (101 when upgraded). */
  readonly status: number;
  /** The handshake's response headers, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** Text messages received, in order, not yet taken. */
  readonly texts: string[];
  /** Resolves with the server's close code and reason (1006 if the TCP stream ended without a close frame). */
  readonly closed: Promise<{ code: number; reason: string }>;
  #socket: Socket;
  #buffer: Buffer;
  #fragments: Buffer[] = [];
  #received = new Inbox<string>();
  #onClose!: (close: { code: number; reason: string }) => void;

  private constructor(socket: Socket, status: number, headers: Record<string, string>, rest: Buffer) {
    this.#socket = socket;
    this.status = status;
    this.headers = headers;
    this.#buffer = rest;
    this.texts = this.#received.items;
    this.closed = new Promise((resolve) => (this.#onClose = resolve));
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    socket.on("close", () => this.#closedWith(1006, ""));
    socket.on("error", () => socket.destroy());
    this.#parse();
  }

  /**
   * Sends an upgrade request for `wsUrl` and resolves once the response head has arrived.
   * `headers` add to or replace the defaults (`Host` included). A socket that was not
   * upgraded (status other than 101) is already destroyed.
   */
  static open(wsUrl: string, headers: Record<string, string> = {}, timeoutMs = 3_000): Promise<RawSocket> {
    const url = new URL(wsUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.write(upgradeRequest(url, headers)));
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error(`no upgrade response within ${timeoutMs} ms`)), timeoutMs);
      let received = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf("\r\n\r\n");
        if (end === -1) return;
        clearTimeout(timer);
        socket.off("data", onData).off("error", fail);
        const [statusLine, ...lines] = received.subarray(0, end).toString("latin1").split("\r\n");
        const responseHeaders: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(":");
          responseHeaders[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const status = Number(statusLine!.split(" ")[1]);
        if (status !== 101) socket.destroy();
        resolve(
          new RawSocket(socket, status, responseHeaders, status === 101 ? received.subarray(end + 4) : Buffer.alloc(0)),
        );
      };
      socket.on("data", onData).once("error", fail);
    });
  }

  /** The HTTP status the server answers an upgrade request with; the socket is closed either way. */
  static async status(wsUrl: string, headers: Record<string, string> = {}): Promise<number> {
    const socket = await RawSocket.open(wsUrl, headers);
    socket.destroy();
    return socket.status;
  }

  /** Sends one masked frame; `payload` as given (a string is UTF-8 encoded). */
  send(opcode: number, payload: Uint8Array | string, fin = true): void {
    this.#socket.write(clientFrame(opcode, typeof payload === "string" ? encoder.encode(payload) : payload, fin));
  }

  /** Sends each text as a text frame, all in one TCP write, so they arrive as one burst. */
  sendTexts(texts: string[]): void {
    this.write(Buffer.concat(texts.map((text) => clientFrame(Opcode.Text, encoder.encode(text)))));
  }

  /** Writes bytes as they are (a hand-made frame, or part of one). */
  write(bytes: Uint8Array): void {
    this.#socket.write(bytes);
  }

  /** Takes the first text message received (JSON-parsed), waiting at most `timeoutMs`. */
  async next(timeoutMs = 3_000): Promise<unknown> {
    const text = await this.#received.take(
      () => true,
      timeoutMs,
      () => `no message within ${timeoutMs} ms`,
      () => (this.#socket.destroyed ? "no message: the socket is closed" : undefined),
    );
    return JSON.parse(text);
  }

  /** Resolves with the server's close code and reason; rejects if the socket is still open after `timeoutMs`. */
  closedWithin(timeoutMs = 3_000): Promise<{ code: number; reason: string }> {
    return within(this.closed, timeoutMs, "the server's close");
  }

  /** Drops the TCP connection without a close handshake. */
  destroy(): void {
    this.#socket.destroy();
  }

  /** Reads every complete server frame in the buffer (server frames are never masked). */
  #parse(): void {
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) return;
      let length = b[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + length) return;
      const fin = (b[0]! & 0x80) !== 0;
      const opcode = b[0]! & 0x0f;
      const payload = b.subarray(at, at + length);
      this.#buffer = b.subarray(at + length);
      this.#frame(opcode, fin, payload);
    }
  }

  #frame(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode === Opcode.Ping) return this.send(Opcode.Pong, payload);
    if (opcode === Opcode.Close) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      // Answer the close handshake, then end our side.
      if (!this.#socket.destroyed) this.#socket.end(clientFrame(Opcode.Close, payload.subarray(0, 2)));
      return this.#closedWith(code, payload.subarray(2).toString("utf8"));
    }
    if (opcode !== Opcode.Text && opcode !== Opcode.Continuation) return;
    this.#fragments.push(payload);
    if (!fin) return;
    this.#received.push(Buffer.concat(this.#fragments).toString("utf8"));
    this.#fragments = [];
  }

  #closedWith(code: number, reason: string): void {
    this.#onClose({ code, reason });
    this.#received.wake();
  }
}
