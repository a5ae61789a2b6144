/**
 * A TCP proxy on 127.0.0.1 in front of a gateway, so a test can do to a real connection what
 * a network does: cut it without a WebSocket close handshake (both ends see the TCP stream
 * end, no close frame), or stop reading from the server as a stalled client would.
 */
import { connect, createServer, type Socket } from "node:net";

interface Pair {
  client: Socket;
  upstream: Socket;
}

export class CutProxy {
  readonly #pairs = new Set<Pair>();
  readonly #target: URL;
  readonly #server = createServer((client) => this.#accept(client));

  private constructor(wsUrl: string) {
    this.#target = new URL(wsUrl);
  }

  /** Starts a proxy to the gateway at `wsUrl`. */
  static async start(wsUrl: string): Promise<CutProxy> {
    const proxy = new CutProxy(wsUrl);
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  /** The WebSocket URL through the proxy. */
  get url(): string {
    const { port } = this.#server.address() as { port: number };
    return `ws://127.0.0.1:${port}${this.#target.pathname}`;
  }

  /** Connections passing through now. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Cuts every connection through the proxy: both TCP streams end, no close frame. */
  cut(): void {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
  }

  /** Stops reading from the server for the `index`-th (0-based) connection still open: a client that stopped reading. */
  stall(index: number): void {
    const pair = [...this.#pairs][index];
    if (!pair) throw new Error(`no connection ${index}`);
    pair.upstream.unpipe(pair.client);
    pair.upstream.pause();
  }

  /** Reads from the server again for the `index`-th connection still open (undoes `stall`): what piled up is delivered. */
  unstall(index: number): void {
    const pair = [...this.#pairs][index];
    if (!pair) throw new Error(`no connection ${index}`);
    pair.upstream.pipe(pair.client);
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const upstream = connect(Number(this.#target.port), this.#target.hostname);
    const pair = { client, upstream };
    this.#pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  }
}
