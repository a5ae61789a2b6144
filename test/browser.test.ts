/**
 * The client SDK in a real browser: Debian's chromium (driven by playwright-core) loads a page
 * that imports `switchboard/client`, bundled for the page by esbuild, from a gateway served on
 * this runtime. The page reaches the gateway through a TCP proxy the test cuts without a close
 * handshake, as a network drop would.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { Hono } from "hono";
import type { Page } from "playwright-core";
import type { Client } from "../src/client/mod.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { CutProxy } from "./helpers/cut-proxy.ts";
import { startGateway } from "./helpers/runtime.ts";
import { sessionMethods } from "./helpers/session-methods.ts";

/** `src/client/mod.ts` and what it imports, as one ES module for the page. */
function clientBundle(): string {
  return execFileSync("node_modules/.bin/esbuild", [
    "src/client/mod.ts",
    "--bundle",
    "--format=esm",
    "--platform=browser",
    "--target=es2022",
  ], {
    encoding: "utf8",
  });
}

// The page keeps what it sees in `window.seen`, and exposes the client as `window.client`.
const PAGE = `<!doctype html><meta charset="utf-8"><title>switchboard client</title>
<script type="module">
  import { connect } from "/client.js";
  const seen = (window.seen = { seqs: [], states: [], reports: [], approvals: 0, results: [], ready: null });
  const client = (window.client = connect(location.origin.replace(/^http/, "ws") + "/api/ws", { reconnect: { baseMs: 10, capMs: 50 } }));
  client.onStateChange((state) => seen.states.push(state));
  client.onResume((report) => seen.reports.push(report));
  client.on("message.delta", (event) => seen.seqs.push(event.seq));
  client.on("approval.result", (event) => seen.results.push(event.payload));
  // Answers only when the test says so, to let a drop happen while the question is open.
  let answer;
  window.answer = new Promise((resolve) => (answer = resolve));
  window.release = () => answer({ choice: "allow" });
  client.handle("approval", () => (seen.approvals++, window.answer));
  client.ready.then((ready) => (seen.ready = ready));
</script>`;

interface Seen {
  seqs: number[];
  states: string[];
  reports: { truncated: boolean; error?: unknown }[];
  approvals: number;
  results: unknown[];
  ready: { epoch: string } | null;
}

/** What the page puts on `window` (these callbacks run in chromium, where `globalThis` is the window). */
interface PageGlobals {
  seen: Seen;
  client: Client;
  release(): void;
}

const seen = (page: Page) => page.evaluate(() => (globalThis as unknown as PageGlobals).seen);

/** Polls the page's `seen` until `check` holds; fails after `timeoutMs`. */
async function untilSeen(page: Page, check: (s: Seen) => boolean, what: string, timeoutMs = 10_000): Promise<Seen> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await seen(page);
    if (check(s)) return s;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ ...s, seqs: s.seqs.length })}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("in chromium: the bundled client streams, resumes after cuts with nothing lost or doubled, and answers a server request once", async () => {
  const app = new Hono();
  const bundle = clientBundle();
  app.get("/", (c) => c.html(PAGE));
  app.get("/client.js", (c) => c.body(bundle, 200, { "content-type": "text/javascript; charset=utf-8" }));
  await using gw = await startGateway({ methods: sessionMethods(), sessions: { replay: { maxEvents: 10_000 } } }, {
    app,
  });
  const proxy = await CutProxy.start(gw.wsUrl);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(proxy.url.replace(/^ws/, "http").replace(/api\/ws$/, ""));
    const ready = await untilSeen(page, (s) => s.ready !== null, "gateway.ready");
    assert.equal(ready.ready!.epoch, gw.gateway.epoch);

    // A long stream, cut three times while it flows.
    const total = 3_000;
    const sessionId = await page.evaluate(async (count) => {
      const client = (globalThis as unknown as PageGlobals).client;
      const { session_id } = await client.call("session.create", {});
      // Three events per macrotask: the stream lasts long enough to be cut three times.
      void client.call("demo.emit", { session_id, count, chunk: 3 }).catch(() => {});
      return session_id as string;
    }, total);
    for (const at of [400, 1_200, 2_100]) {
      const { states, seqs } = await untilSeen(
        page,
        (s) => s.seqs.length >= at && s.states.at(-1) === "open",
        `event ${at}`,
      );
      proxy.cut();
      assert.ok(seqs.length < total, "the cut fell after the stream ended");
      await untilSeen(page, (s) => s.states.length > states.length, "the drop");
    }
    const streamed = await untilSeen(page, (s) => s.seqs.at(-1) === total, "the last event", 20_000);
    assert.equal(streamed.seqs.length, total);
    assert.ok(streamed.seqs.every((seq, i) => seq === i + 1), "lost or doubled events");
    assert.ok(
      streamed.reports.length >= 1 && streamed.reports.every((r) => !r.truncated && !r.error),
      JSON.stringify(streamed.reports),
    );

    // A server request open across a drop reaches the page's handler once; its answer arrives after resume.
    await page.evaluate(
      (session_id) =>
        void (globalThis as unknown as PageGlobals).client.call("demo.ask", { session_id }).catch(() => {}),
      sessionId,
    );
    await untilSeen(page, (s) => s.approvals === 1, "the approval request");
    const drops = (await seen(page)).states.length;
    proxy.cut();
    await untilSeen(page, (s) => s.states.length >= drops + 2 && s.states.at(-1) === "open", "the reconnect");
    await page.evaluate(() => (globalThis as unknown as PageGlobals).release());
    const answered = await untilSeen(page, (s) => s.results.length === 1, "the approval result");
    assert.deepEqual(answered.results, [{ answer: { choice: "allow" } }]);
    assert.equal(answered.approvals, 1);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await proxy.close();
  }
});
