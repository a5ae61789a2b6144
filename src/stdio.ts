/**
 * `switchboard/stdio`: the gateway over a pair of byte streams, one JSON-RPC message per
 * line (NDJSON). The same connection semantics as WebSocket: `gateway.ready` first, the
 * same errors. Nothing but protocol goes to `output`; logs go to the gateway's logger.
 */
import { atMost } from "./gateway/waits.ts";
import { type Gateway, gatewayCore } from "./gateway/gateway.ts";
import { NdjsonSocket } from "./transport/ndjson.ts";

/** Options of `serveStdio`. */
export interface StdioOptions {
  /** Bytes from the client (e.g. stdin). */
  input: ReadableStream<Uint8Array>;
  /** Bytes to the client (e.g. stdout); left open when serving ends. */
  output: WritableStream<Uint8Array>;
  /** At end of input, how long in-flight requests may still run and answer. Default 5 s. */
  drainMs?: number;
  /** Who is on the other end (sessions belong to it). Default "anonymous": whoever started the process. */
  principal?: string;
}

/**
 * Serves one connection over `input` / `output` and resolves after its teardown, which
 * follows the end of `input` once in-flight requests have answered (or `drainMs` passed),
 * so `echo '{"jsonrpc":"2.0","id":1,"method":"gateway.ping"}' | app --stdio` gets its reply.
 * A line over `limits.maxMessageBytes` is answered with -32600 and skipped (there is no
 * close code on a pipe).
 */
export async function serveStdio(
  gateway: Gateway,
  { input, output, drainMs = 5_000, principal }: StdioOptions,
): Promise<void> {
  const socket = new NdjsonSocket(output);
  const connection = gatewayCore(gateway).open(socket, "stdio", principal);
  try {
    await socket.read(input, gateway.limits.maxMessageBytes);
  } catch (error) {
    gateway.log.warn("stdio input failed", { error });
  }
  await atMost(connection.idle(), drainMs);
  connection.close(1000, "eof");
  // The socket ends once its writes are done; the connection tears down then.
  await socket.done;
}
