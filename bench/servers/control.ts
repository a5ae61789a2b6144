/**
 * What every benchmark server shares with the runner: it prints `{"port":N}` once listening,
 * then answers each `stats` line on stdin with its own CPU time and RSS, read from the
 * process's accounting (`process` is global on Node, Deno and Bun alike).
 */
export function announce(port: number): void {
  console.log(JSON.stringify({ port }));
  let buffered = "";
  process.stdin.on("data", (chunk: Uint8Array | string) => {
    buffered += String(chunk);
    for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
      const command = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (command === "stats") {
        const { user, system } = process.cpuUsage();
        console.log(JSON.stringify({ cpu_us: user + system, rss: process.memoryUsage().rss }));
      }
    }
  });
  process.stdin.on("end", () => process.exit(0));
}

/** The first frame every benchmark server sends, so one client serves them all. */
export const READY = JSON.stringify({ jsonrpc: "2.0", method: "event", params: { type: "gateway.ready", payload: {} } });

/** One streamed event's payload (about 60 bytes on the wire with its envelope). */
export function delta(i: number) {
  return { type: "message.delta", payload: { text: "tok", i } };
}
