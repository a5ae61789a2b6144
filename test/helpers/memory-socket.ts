/**
 * An in-memory frame socket pair: a gateway connection on one end (a `FrameSocket`), a client
 * on the other (a `Dial`), no network and no runtime. Frames cross in a microtask, in order, as
 * over a socket; either end closing closes both.
 */
import type { Channel, ChannelEvents, Dial } from "../../src/client/mod.ts";
import { type Gateway, gatewayCore } from "../../src/gateway/gateway.ts";
import type { FrameSink, FrameSocket } from "../../src/transport/transport.ts";

/** The gateway's end. */
class ServerEnd implements FrameSocket {
  sink: FrameSink | undefined;
  client: ChannelEvents | undefined;
  open = true;

  send(text: string): void {
    if (!this.open) throw new Error("closed");
    const client = this.client;
    queueMicrotask(() => client?.onMessage(text));
  }

  close(code = 1000, reason = ""): void {
    this.end(code, reason);
  }

  attach(sink: FrameSink): void {
    this.sink = sink;
  }

  /** Both ends learn of the close, once. */
  end(code: number, reason: string): void {
    if (!this.open) return;
    this.open = false;
    const { sink, client } = this;
    queueMicrotask(() => {
      sink?.ended(code);
      client?.onClose(code, reason);
    });
  }
}

/**
 * A `Dial` that opens a new in-memory connection to `gateway` on every (re)connect; `drop()`
 * cuts the current one as a network would (1006).
 */
export function memoryDial(gateway: Gateway): { dial: Dial; drop(): void } {
  let current: ServerEnd | undefined;
  const dial: Dial = (events) => {
    const server = new ServerEnd();
    server.client = events;
    current = server;
    queueMicrotask(() => gatewayCore(gateway).open(server, "memory"));
    const channel: Channel = {
      send(text) {
        if (server.open) queueMicrotask(() => server.sink?.text(text));
      },
      close: (code = 1000, reason = "") => server.end(code, reason),
    };
    return channel;
  };
  return { dial, drop: () => current?.end(1006, "") };
}
