/**
 * The reference agent app in a real browser: `src/app/main.ts` runs as a child process on this
 * runtime (as `npm start` does) and Debian's chromium, driven by playwright-core, uses its web
 * chat through a TCP proxy the tests cut without a close handshake, as a network drop would.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { type Client, connect } from "../src/client/mod.ts";
import { demoScript } from "../src/app/agent.ts";
import type { AgentGateway } from "../src/app/gateway.ts";
import type { Snapshot } from "../src/app/transcript.ts";
import { type RunningApp, startApp } from "./helpers/app.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { CutProxy } from "./helpers/cut-proxy.ts";
import { upgradeStatus, webSocketClass } from "./helpers/runtime.ts";

const ARTIFACTS = "test-artifacts";
const WAIT = 15_000;

interface Setup {
  app: RunningApp;
  proxy: CutProxy;
  browser: Browser;
  /** A client of the app's gateway (not through the proxy), to read what the server holds. */
  observer: Client<AgentGateway>;
  /** The page's URL through the proxy, token included. */
  pageUrl: string;
}

// One app, proxy and browser for every test in this file, started by the first that needs them.
let setup: Promise<Setup> | undefined;
function shared(): Promise<Setup> {
  setup ??= (async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // 10 ms a word: an answer lasts about a second, long enough to cut or reload in the middle.
    const app = await startApp(["--delay-ms", "10"]);
    const proxy = await CutProxy.start(app.wsUrl);
    const browser = await launchChromium();
    const observer = connect<AgentGateway>(app.wsUrl, { token: app.token, WebSocket: await webSocketClass() });
    await observer.ready;
    const pageUrl = `${proxy.url.replace(/^ws/, "http").replace(/api\/ws$/, "")}#token=${app.token}`;
    return { app, proxy, browser, observer, pageUrl };
  })();
  return setup;
}

after(async () => {
  if (!setup) return;
  const { app, proxy, browser, observer } = await setup;
  observer.close();
  await browser.close();
  await proxy.close();
  await app.close();
});

/** Uncaught errors of each page, checked when it is done. */
const pageErrors = new WeakMap<Page, string[]>();

/** A fresh browser context (its own sessionStorage) with the chat open and connected. */
async function openChat(s: Setup): Promise<Page> {
  const context = await s.browser.newContext({ viewport: { width: 1000, height: 720 } });
  const page = await context.newPage();
  const errors: string[] = [];
  pageErrors.set(page, errors);
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(s.pageUrl);
  await connected(page);
  return page;
}

function connected(page: Page): Promise<unknown> {
  return page.locator('#connection[data-state="open"]').waitFor({ timeout: WAIT });
}

/**
 * The part of the page's `window` that the callbacks below use. They run in chromium, but this
 * file is also type-checked with Deno's libraries, which have no DOM, so it is spelled out here.
 */
interface PageWindow {
  readonly document: {
    getElementById(id: string): PageElement | null;
    querySelector(selectors: string): PageElement | null;
  };
  readonly MutationObserver: new (callback: () => void) => {
    observe(target: PageElement, options: { attributes: boolean; attributeFilter: string[] }): void;
  };
  /** The `data-state` values of `#connection`, as `cutAndReconnect` records them. */
  states: (string | undefined)[];
}

interface PageElement {
  readonly dataset: { readonly [name: string]: string | undefined };
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selectors: string): PageElement | null;
}

/**
 * Cuts the page's connection at the proxy and waits until the page has shown "reconnecting"
 * and then "open" again (recorded by a mutation observer: the reconnect may be too quick to poll).
 */
async function cutAndReconnect(s: Setup, page: Page): Promise<void> {
  await page.evaluate(() => {
    const g = globalThis as unknown as PageWindow;
    const connection = g.document.getElementById("connection")!;
    g.states = [];
    new g.MutationObserver(() => g.states.push(connection.dataset.state)).observe(connection, {
      attributes: true,
      attributeFilter: ["data-state"],
    });
  });
  s.proxy.cut();
  await page.waitForFunction(
    () => {
      const { states } = globalThis as unknown as PageWindow;
      return states.includes("reconnecting") && states.at(-1) === "open";
    },
    undefined,
    { timeout: WAIT },
  );
}

async function send(page: Page, text: string): Promise<void> {
  await page.getByLabel("Message").fill(text);
  await page.getByLabel("Message").press("Enter");
}

/** The last turn's answer text as the page shows it, one string per text part. */
function shownParts(page: Page): Promise<string[]> {
  return page.locator(".turn").last().locator(".answer .text").allTextContents();
}

/** Waits until the last turn's answer shows at least `words` words (and is still running). */
async function untilWords(page: Page, words: number): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const turn = (globalThis as unknown as PageWindow).document.querySelector(".turn:last-of-type");
      return turn?.getAttribute("aria-busy") === "true" &&
        (turn.querySelector(".answer .text")?.textContent ?? "").split(/\s+/).filter(Boolean).length >= n;
    },
    words,
    { timeout: WAIT },
  );
}

/** Waits for the last turn to end with `status`. */
function untilStatus(page: Page, status: string): Promise<unknown> {
  return page.locator(`.turn:last-of-type[data-status="${status}"]`).waitFor({ timeout: WAIT });
}

/** The last turn of the page's session as the server holds it, text parts only. */
async function serverParts(s: Setup, page: Page): Promise<string[]> {
  const sessionId = await page.evaluate(() => sessionStorage.getItem("switchboard.session"));
  assert.ok(sessionId, "the page keeps its session id");
  const snapshot = (await s.observer.call("session.history", { session_id: sessionId })) as Snapshot;
  return snapshot.turns.at(-1)!.parts.flatMap((part) => (part.kind === "text" ? [part.text] : []));
}

async function finish(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}/app-${name}.png` });
  await page.context().close();
  assert.deepEqual(pageErrors.get(page), [], "uncaught errors in the page");
}

test("app: serves /healthz and the page; the gateway refuses a connection without the access token", async () => {
  const { app } = await shared();
  assert.deepEqual(await (await fetch(`${app.base}healthz`)).json(), { ok: true });
  const page = await fetch(app.base);
  assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  assert.match(await page.text(), /<script type="module" src="\/app.js">/);
  assert.match(
    await (await fetch(`${app.base}app.js`)).text(),
    /switchboard\.token\./,
    "the script is bundled with switchboard/client",
  );
  assert.equal(await upgradeStatus(app.wsUrl), 401);
  assert.equal(
    await upgradeStatus(app.wsUrl, { "Sec-WebSocket-Protocol": "switchboard.v1, switchboard.token.wrong" }),
    401,
  );
});

test("in chromium: an answer streams in word by word, ends as the agent's script, and the session is listed", async () => {
  const s = await shared();
  const page = await openChat(s);
  assert.match(await page.locator("#agent").innerText(), /demo/);
  await send(page, "Hello there");
  await untilWords(page, 3);
  const partial = (await shownParts(page)).join("");
  await untilStatus(page, "done");
  const expected = demoScript("Hello there").intro;
  assert.ok(
    expected.startsWith(partial) && partial.length < expected.length,
    "text appeared before the answer was complete",
  );
  assert.deepEqual(await shownParts(page), [expected]);
  assert.deepEqual(await serverParts(s, page), [expected]);
  await page.locator("#session-list", { hasText: "Hello there" }).waitFor({ timeout: WAIT });
  await finish(page, "chat");
});

test("in chromium: approval buttons — allow runs the simulated tool, deny (by keyboard) leads to another answer", async () => {
  const s = await shared();
  const page = await openChat(s);
  const script = demoScript("Which files are there?");
  await send(page, "Which files are there?");
  const tool = page.getByRole("group", { name: "Tool request: list_files" }).last();
  await tool.getByRole("button", { name: "Allow" }).click({ timeout: WAIT });
  await untilStatus(page, "done");
  assert.deepEqual(await shownParts(page), [script.intro, script.allowed]);
  assert.match(await tool.innerText(), /Allowed\.[\s\S]*README\.md/);

  await send(page, "Which files are there?");
  const second = page.getByRole("group", { name: "Tool request: list_files" }).last();
  await second.getByRole("button", { name: "Deny" }).press("Enter", { timeout: WAIT });
  await untilStatus(page, "done");
  assert.deepEqual(await shownParts(page), [script.intro, script.denied]);
  assert.match(await second.innerText(), /Denied\./);
  assert.deepEqual(await serverParts(s, page), [script.intro, script.denied]);
  await finish(page, "approval");
});

test("in chromium: Stop interrupts an answer mid-sentence, and a pending approval, as the server records", async () => {
  const s = await shared();
  const page = await openChat(s);
  await send(page, "Tell me a story");
  await untilWords(page, 5);
  await page.getByRole("button", { name: "Stop" }).click();
  await untilStatus(page, "interrupted");
  const shown = await shownParts(page);
  const full = demoScript("Tell me a story").intro;
  assert.ok(full.startsWith(shown[0]!) && shown[0]!.length < full.length, "cut short");
  assert.deepEqual(await serverParts(s, page), shown);
  assert.match(await page.locator(".turn").last().locator(".status").innerText(), /Interrupted/);

  await send(page, "Show me the files");
  const tool = page.getByRole("group", { name: "Tool request: list_files" }).last();
  await tool.getByRole("button", { name: "Allow" }).waitFor({ timeout: WAIT });
  await page.getByRole("button", { name: "Stop" }).click();
  await untilStatus(page, "interrupted");
  assert.match(await tool.innerText(), /Cancelled\./);
  assert.equal(await tool.getByRole("button").count(), 0, "no buttons left");
  assert.equal(await page.getByRole("button", { name: "Stop" }).isDisabled(), true);
  await finish(page, "interrupt");
});

/**
 * Asks `prompt`, disrupts the page mid-answer and again while the approval is open, allows the
 * tool, and checks the page and the server show the whole answer once.
 */
async function answerSurvives(s: Setup, page: Page, prompt: string, disrupt: () => Promise<void>): Promise<void> {
  const script = demoScript(prompt);
  await send(page, prompt);
  await untilWords(page, 8);
  await disrupt();
  const tool = page.getByRole("group", { name: "Tool request: list_files" }).last();
  await tool.getByRole("button", { name: "Allow" }).waitFor({ timeout: WAIT });
  await disrupt();
  await tool.getByRole("button", { name: "Allow" }).click({ timeout: WAIT });
  await untilStatus(page, "done");
  assert.deepEqual(await shownParts(page), [script.intro, script.allowed]);
  assert.deepEqual(await serverParts(s, page), [script.intro, script.allowed]);
}

test("in chromium: the connection cut mid-answer (and again at an approval) — the page reconnects and shows the whole answer once", async () => {
  const s = await shared();
  const page = await openChat(s);
  await answerSurvives(s, page, "Which files can you see?", () => cutAndReconnect(s, page));
  await finish(page, "cut");
});

test("in chromium: a reload mid-answer (and again at an approval) — the page draws the conversation again and the whole answer once", async () => {
  const s = await shared();
  const page = await openChat(s);
  await answerSurvives(s, page, "Any files here?", async () => {
    await page.reload();
    await connected(page);
  });
  assert.equal(await page.locator(".turn").count(), 1);
  await finish(page, "reload");
});

test("in chromium: past sessions are listed and reopen with their conversation", async () => {
  const s = await shared();
  const page = await openChat(s);
  await send(page, "First conversation");
  await untilStatus(page, "done");
  const first = await serverParts(s, page);
  await page.getByRole("button", { name: "New chat" }).click();
  await send(page, "Second conversation");
  // Stopped at once: only its place in the list matters here.
  await untilWords(page, 1);
  await page.getByRole("button", { name: "Stop" }).click();
  await untilStatus(page, "interrupted");
  const list = page.getByRole("navigation", { name: "Sessions" });
  await list.getByRole("button", { name: /Second conversation/ }).waitFor({ timeout: WAIT });
  await list.getByRole("button", { name: /First conversation/ }).click();
  await page.locator(".turn .prompt", { hasText: "First conversation" }).waitFor({ timeout: WAIT });
  assert.equal(await page.locator(".turn").count(), 1);
  assert.deepEqual(await shownParts(page), [demoScript("First conversation").intro]);
  assert.deepEqual(first, [demoScript("First conversation").intro]);
  assert.equal(await list.getByRole("button", { name: /First conversation/ }).getAttribute("aria-current"), "true");
  await finish(page, "sessions");
});
