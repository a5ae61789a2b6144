/**
 * What the bench's Bun clients (`bench/client.ts`, `bench/fault-client.ts`) share: their line
 * protocol with the runner, their deadline, and opening a socket to a server.
 */

let stdin: AsyncIterator<string> | undefined;

/** The runner's next command line; undefined once stdin ends (the runner is done with this client). */
export async function command(): Promise<string | undefined> {
  stdin ??= console[Symbol.asyncIterator]();
  const { value, done } = await stdin.next();
  return done ? undefined : String(value).trim();
}

/** Tells the runner `value`, as one JSON line. */
export const say = (value: object) => console.log(JSON.stringify(value));

/**
 * Runs `main` as the whole client: exit 0 when it is done, 1 if it fails, 2 if it is not done
 * within `maxMs`; `label` starts every message on stderr.
 */
export async function runClient(label: string, maxMs: number, main: () => Promise<void>): Promise<never> {
  setTimeout(() => {
    console.error(`${label} not done within ${maxMs} ms`);
    process.exit(2);
  }, maxMs);
  try {
    await main();
    process.exit(0);
  } catch (error) {
    console.error(`${label}: ${(error as Error).message}`);
    process.exit(1);
  }
}

/** Opens a WebSocket and resolves at its first frame (`gateway.ready`); rejects if it fails or closes first. */
export function openReady(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.addEventListener("message", () => resolve(ws), { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    ws.addEventListener("close", (event) => reject(new Error(`closed ${event.code} before gateway.ready`)), {
      once: true,
    });
  });
}
