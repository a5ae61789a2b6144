/**
 * The reference agent app in a real browser: `src/app/main.ts` runs as a child process on this
 * runtime (as `npm start` does) and Debian's chromium, driven by playwright-core, uses its web
 * chat through a TCP proxy the tests cut without a close handshake, as a network drop would;
 * at desktop and at phone size; with a wrong token; across a restart of the server; and across
 * two nodes on Redis.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { type Client, connect } from "../src/client/mod.ts";
import { DEMO_QUESTION, demoScript } from "../src/app/agent.ts";
import type { AgentGateway } from "../src/app/gateway.ts";
import type { Snapshot } from "../src/app/transcript.ts";
import { fakeOpenAI, type RunningApp, startApp, streamChunks, streamToolCalls } from "./helpers/app.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { CutProxy } from "./helpers/cut-proxy.ts";
import { RedisServer } from "./helpers/redis-server.ts";
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

const DESKTOP = { width: 1000, height: 720 };
const PHONE = { width: 390, height: 844 };

/**
 * `url` in a fresh browser context (its own sessionStorage), its uncaught errors recorded.
 * Reduced motion: the phone's drawer then opens without sliding, so it can be measured at once.
 */
async function openPage(browser: Browser, url: string, viewport = DESKTOP): Promise<Page> {
  const context = await browser.newContext({ viewport, reducedMotion: "reduce" });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const errors: string[] = [];
  pageErrors.set(page, errors);
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url);
  return page;
}

/** A fresh browser context with the chat open and connected. */
async function openChat(s: Setup, viewport = DESKTOP): Promise<Page> {
  const page = await openPage(s.browser, s.pageUrl, viewport);
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
    readonly documentElement: PageElement;
  };
  readonly innerHeight: number;
  readonly MutationObserver: new (callback: () => void) => {
    observe(target: PageElement, options: { attributes: boolean; attributeFilter: string[] }): void;
  };
  /** The `data-state` values of `#connection`, as `cutAndReconnect` records them. */
  states: (string | undefined)[];
}

interface PageElement {
  readonly dataset: { readonly [name: string]: string | undefined };
  readonly textContent: string | null;
  readonly scrollWidth: number;
  readonly clientWidth: number;
  readonly scrollHeight: number;
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

/** The page's session as the server holds it. */
async function serverHistory(s: Setup, page: Page): Promise<Snapshot> {
  const sessionId = await page.evaluate(() => sessionStorage.getItem("switchboard.session"));
  assert.ok(sessionId, "the page keeps its session id");
  return (await s.observer.call("session.history", { session_id: sessionId })) as Snapshot;
}

/** The last turn of the page's session as the server holds it, text parts only. */
async function serverParts(s: Setup, page: Page): Promise<string[]> {
  const snapshot = await serverHistory(s, page);
  return snapshot.turns.at(-1)!.parts.flatMap((part) => (part.kind === "text" ? [part.text] : []));
}

async function finish(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}/app-${name}.png` });
  await page.context().close();
  assert.deepEqual(pageErrors.get(page), [], "uncaught errors in the page");
}

test("app: serves /healthz and the page; the gateway refuses a connection without the access token; POST /api/ticket trades the token for a single-use ticket, or answers 401", async () => {
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

  const askTicket = (headers: Record<string, string>) => fetch(`${app.base}api/ticket`, { method: "POST", headers });
  assert.equal((await askTicket({})).status, 401);
  assert.equal((await askTicket({ authorization: "Bearer wrong" })).status, 401);
  const answer = await askTicket({ authorization: `Bearer ${app.token}` });
  assert.equal(answer.status, 200);
  const { ticket } = (await answer.json()) as { ticket: string };
  const withTicket = `${app.wsUrl}?ticket=${encodeURIComponent(ticket)}`;
  const protocol = { "Sec-WebSocket-Protocol": "switchboard.v1" };
  assert.equal(await upgradeStatus(withTicket, protocol), 101);
  assert.equal(await upgradeStatus(withTicket, protocol), 401, "a ticket is good for one connection");
});

test("in chromium: an answer streams in word by word, ends as the agent's script, and the session is listed", async () => {
  const s = await shared();
  const page = await openChat(s);
  assert.match(await page.locator("#agent").innerText(), /demo/);
  await send(page, "Hello there");
  await untilWords(page, 3);
  const partial = (await shownParts(page)).join("");
  await untilStatus(page, "complete");
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
  await untilStatus(page, "complete");
  assert.deepEqual(await shownParts(page), [script.intro, script.allowed]);
  assert.match(await tool.innerText(), /Allowed\.[\s\S]*README\.md/);

  await send(page, "Which files are there?");
  const second = page.getByRole("group", { name: "Tool request: list_files" }).last();
  await second.getByRole("button", { name: "Deny" }).press("Enter", { timeout: WAIT });
  await untilStatus(page, "complete");
  assert.deepEqual(await shownParts(page), [script.intro, script.denied]);
  assert.match(await second.innerText(), /Denied\./);
  assert.deepEqual(await serverParts(s, page), [script.intro, script.denied]);
  await finish(page, "approval");
});

test("in chromium: a question with choices — its buttons come back after a reload, a choice picks the answer, Decline leads to another", async () => {
  const s = await shared();
  const page = await openChat(s);
  const prompt = "Please clarify: how does this work?";
  const script = demoScript(prompt);
  await send(page, prompt);
  const question = page.getByRole("group", { name: `Question: ${DEMO_QUESTION.question}` }).last();
  await question.getByRole("button", { name: "long" }).waitFor({ timeout: WAIT });
  const status = page.locator(".turn").last().locator(".answer .status");
  assert.equal(await status.innerText(), "Waiting for your answer…");
  await page.reload();
  await connected(page);
  await question.getByRole("button", { name: "long" }).click({ timeout: WAIT });
  await untilStatus(page, "complete");
  assert.deepEqual(await shownParts(page), [script.intro, script.answered("long")]);
  assert.match(await question.innerText(), /Answered: long/);
  assert.equal(await question.getByRole("button").count(), 0, "no buttons left");
  assert.deepEqual(await serverParts(s, page), [script.intro, script.answered("long")]);

  await send(page, prompt);
  const second = page.getByRole("group", { name: `Question: ${DEMO_QUESTION.question}` }).last();
  await second.getByRole("button", { name: "Decline" }).click({ timeout: WAIT });
  await untilStatus(page, "complete");
  assert.deepEqual(await shownParts(page), [script.intro, script.answered(null)]);
  assert.match(await second.innerText(), /Not answered\./);
  const [, last] = (await serverHistory(s, page)).turns;
  assert.deepEqual(last!.parts[1], { kind: "clarify", ...DEMO_QUESTION, clarify_id: "t2-clarify1", answer: null });
  await finish(page, "clarify");
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
  assert.equal(await page.locator(".turn").last().locator(".answer .status").innerText(), "Interrupted.");

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
  await untilStatus(page, "complete");
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
  await untilStatus(page, "complete");
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

test("in chromium: one turn at a time — while the agent answers, its card shows it working and Send is disabled (Enter keeps the next prompt); then Send is back; the whole session title shows", async () => {
  const s = await shared();
  const page = await openChat(s);
  const first = "Summarise the session layer in a few words"; // under the 48 characters of a title
  await send(page, first);
  await untilWords(page, 1);
  const status = page.locator(".turn").last().locator(".answer .status");
  assert.equal(await status.innerText(), "Working…");
  const sendButton = page.getByRole("button", { name: "Send" });
  assert.equal(await sendButton.isDisabled(), true);
  await send(page, "A second prompt");
  await untilStatus(page, "complete");
  // Sent, the second prompt would have started a turn at once, long before the first ended.
  assert.equal(await page.locator(".turn").count(), 1, "nothing was sent while the agent answered");
  assert.equal((await serverHistory(s, page)).turns.length, 1);
  assert.equal(await page.getByLabel("Message").inputValue(), "A second prompt", "the next prompt is kept");
  assert.equal(await status.isVisible(), false, "no indicator once the answer is done");
  assert.equal(await sendButton.isDisabled(), false);
  await page.getByLabel("Message").press("Enter");
  await page.locator(".turn").nth(1).waitFor({ timeout: WAIT });
  await untilStatus(page, "complete");
  assert.deepEqual(await shownParts(page), [demoScript("A second prompt").intro]);

  const entry = page.locator('#session-list button[aria-current="true"]');
  assert.equal(await entry.getAttribute("title"), first);
  assert.equal(await entry.locator(".title").innerText(), first);
  const clipped = await page.evaluate(() => {
    const title = (globalThis as unknown as PageWindow).document.querySelector(
      '#session-list button[aria-current="true"] .title',
    )!;
    return title.scrollWidth > title.clientWidth;
  });
  assert.equal(clipped, false, "the title is not cut off");
  await finish(page, "one-turn");
});

test("in chromium: an answer may outlast a call's default deadline (60 s): a minute spent at an approval does not cancel the turn", async () => {
  const s = await shared();
  const page = await openPage(s.browser, "about:blank");
  await page.clock.install(); // the page's timers, so that a minute can pass at once
  await page.goto(s.pageUrl);
  await connected(page);
  const prompt = "Which files are there?";
  await send(page, prompt);
  const allow = page.getByRole("group", { name: "Tool request: list_files" }).getByRole("button", { name: "Allow" });
  await allow.waitFor();
  await page.clock.fastForward(61_000);
  await allow.click();
  await untilStatus(page, "complete");
  assert.deepEqual(await shownParts(page), [demoScript(prompt).intro, demoScript(prompt).allowed]);
  assert.equal(await page.getByRole("alert").isVisible(), false, "no error shown");
  await finish(page, "long-turn");
});

test("in chromium at phone size (390×844): the sessions are a drawer behind a button, wide enough to use; the composer stays in the viewport through a long chat", async () => {
  const s = await shared();
  const page = await openChat(s, PHONE);
  const drawer = page.getByRole("navigation", { name: "Sessions" });
  const toggle = page.getByRole("button", { name: "Sessions" });
  const newChat = page.getByRole("button", { name: "New chat" });

  // Several screens' worth: a 40-line prompt, then its answer.
  const prompt = Array.from({ length: 40 }, (_, i) => `Line ${i + 1} of a long question`).join("\n");
  await send(page, prompt);
  await untilStatus(page, "complete");
  const composer = await page.locator("#composer").boundingBox();
  assert.ok(
    composer && composer.y >= 0 && composer.y + composer.height <= PHONE.height,
    `the composer is within the viewport: ${JSON.stringify(composer)}`,
  );
  const pageHeight = await page.evaluate(() =>
    (globalThis as unknown as PageWindow).document.documentElement.scrollHeight
  );
  assert.ok(pageHeight <= PHONE.height, `the page itself does not scroll (${pageHeight} px); the conversation does`);

  assert.equal(await newChat.isVisible(), false, "the drawer starts closed");
  await toggle.click();
  await newChat.waitFor({ timeout: WAIT });
  assert.equal(await toggle.getAttribute("aria-expanded"), "true");
  const box = await drawer.boundingBox();
  assert.ok(
    box && box.x >= 0 && box.width >= 300 && box.x + box.width <= PHONE.width,
    `drawer: ${JSON.stringify(box)}`,
  );
  const entry = drawer.getByRole("button", { name: /Line 1 of a long question/ });
  const entryBox = await entry.boundingBox();
  assert.ok(entryBox && entryBox.width >= 250, `the session's entry is usable: ${JSON.stringify(entryBox)}`);
  assert.equal(await entry.getAttribute("aria-current"), "true");

  await page.keyboard.press("Escape");
  await newChat.waitFor({ state: "hidden", timeout: WAIT });
  assert.equal(await toggle.getAttribute("aria-expanded"), "false");

  await toggle.click();
  await newChat.click();
  await newChat.waitFor({ state: "hidden", timeout: WAIT });
  assert.equal(await page.locator(".turn").count(), 0, "a new chat is empty");
  await finish(page, "phone");
});

test("in chromium: an open page keeps each conversation it lists — after a reload, one not on screen outlives the server's 20 s grace for conversations nobody views", async () => {
  const s = await shared();
  const page = await openChat(s);
  await send(page, "Kept while a page is open");
  await untilStatus(page, "complete");
  const kept = await page.evaluate(() => sessionStorage.getItem("switchboard.session"));
  await page.getByRole("button", { name: "New chat" }).click();
  await page.reload();
  await connected(page);
  const list = page.getByRole("navigation", { name: "Sessions" });
  await list.getByRole("button", { name: /Kept while a page is open/ }).waitFor();
  // A conversation left after the reload: once the server has ended it, the grace of any left at the reload has run out too.
  const leaving = connect<AgentGateway>(s.app.wsUrl, {
    token: s.app.token,
    WebSocket: await webSocketClass(),
    reconnect: false,
  });
  const { session_id: probe } = await leaving.call("session.create", {});
  leaving.close();
  const listed = async () => (await s.observer.call("session.list", {})).sessions.map((entry) => entry.session_id);
  for (let tries = 0; (await listed()).includes(probe); tries++) {
    assert.ok(tries < 300, "the conversation nobody views ends within 30 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok((await listed()).includes(kept!), "the conversation the page lists is still there");
  await finish(page, "kept");
});

test("in chromium: a wrong access token is final — the page says the token is invalid or outdated and what to do, and stops connecting; so does a missing one", async () => {
  const s = await shared();
  const base = s.pageUrl.slice(0, s.pageUrl.indexOf("#"));
  for (
    const [url, message] of [
      [`${base}#token=wrong`, /This access token is invalid or outdated[\s\S]*npm start/],
      [base, /No access token: open the URL that `npm start` printed/],
    ] as const
  ) {
    const page = await openPage(s.browser, url);
    const sockets: string[] = [];
    page.on("websocket", (socket) => sockets.push(socket.url()));
    await page.locator('#connection[data-state="closed"]').waitFor({ timeout: WAIT });
    assert.equal(await page.locator("#connection-text").innerText(), "Disconnected");
    assert.match(await page.getByRole("alert").innerText(), message);
    assert.deepEqual(sockets, [], "no WebSocket is even tried with a refused token");
    assert.equal(await page.getByRole("button", { name: "Send" }).isDisabled(), true);
    await finish(page, url === base ? "no-token" : "wrong-token");
  }
});

/** Stops `app` and starts it again on the same port with `env`, as a user restarting `npm start` would. */
async function restart(app: RunningApp, args: string[], env: Record<string, string> = {}): Promise<RunningApp> {
  await app.close();
  return startApp([...args, "--port", new URL(app.base).port], env);
}

test("in chromium, with an OpenAI-compatible endpoint: the model's ask_user without choices is a text field; the typed answer goes back to the model", async () => {
  const { browser } = await shared();
  const ask = { id: "call_1", name: "ask_user", args: '{"question":"What is your name?"}' };
  const fake = await fakeOpenAI((request, res) =>
    (request.body.messages.at(-1)!.role === "tool" ? streamChunks(["Nice ", "to meet you."]) : streamToolCalls([ask]))(
      request,
      res,
    )
  );
  const app = await startApp([], { SWITCHBOARD_OPENAI_BASE_URL: fake.baseUrl });
  try {
    const page = await openPage(browser, app.url);
    await connected(page);
    await send(page, "Hello");
    const question = page.getByRole("group", { name: "Question: What is your name?" });
    await question.getByLabel("Your answer").fill("Ada");
    await question.getByLabel("Your answer").press("Enter");
    await untilStatus(page, "complete");
    assert.deepEqual(await shownParts(page), ["Nice to meet you."]);
    assert.match(await question.innerText(), /Answered: Ada/);
    assert.deepEqual(fake.requests[1]!.body.messages.at(-1), { role: "tool", tool_call_id: "call_1", content: "Ada" });
    await finish(page, "openai-ask");
  } finally {
    await app.close();
    await fake.close();
  }
});

test("in chromium: the server restarted (a new token) — the page says so and what to do, stops reconnecting, and marks the half answer cut off", async () => {
  const { browser } = await shared();
  const args = ["--delay-ms", "20"];
  let app = await startApp(args);
  try {
    const page = await openPage(browser, app.url);
    await connected(page);
    await send(page, "Tell me a story");
    await untilWords(page, 3);
    app = await restart(app, args);
    await page.locator('#connection[data-state="closed"]').waitFor({ timeout: WAIT });
    assert.match(
      await page.getByRole("alert").innerText(),
      /The server restarted with a new access token[\s\S]*Open the URL the server printed/,
    );
    await untilStatus(page, "cut");
    assert.equal(await page.locator(".turn").last().getAttribute("aria-busy"), null);
    assert.match(await page.locator(".turn").last().locator(".answer .status").innerText(), /^Cut off/);
    await finish(page, "restart-new-token");
  } finally {
    await app.close();
  }
});

test("in chromium: the server restarted with the same token (SWITCHBOARD_TOKEN) — the page reconnects, says the conversation is gone, and Start a new chat works", async () => {
  const { browser } = await shared();
  const args = ["--delay-ms", "20"];
  const env = { SWITCHBOARD_TOKEN: "kept-across-restarts" };
  let app = await startApp(args, env);
  try {
    const page = await openPage(browser, app.url);
    await connected(page);
    await send(page, "Tell me a story");
    await untilWords(page, 3);
    app = await restart(app, args, env);
    const alert = page.getByRole("alert");
    await alert.filter({ hasText: "The server restarted, so this conversation is gone" }).waitFor({ timeout: WAIT });
    await connected(page);
    await untilStatus(page, "cut");
    await page.getByRole("button", { name: "Start a new chat" }).click();
    assert.equal(await page.locator(".turn").count(), 0);
    assert.equal(await alert.isVisible(), false);
    await send(page, "Hello again");
    await untilStatus(page, "complete");
    assert.deepEqual(await shownParts(page), [demoScript("Hello again").intro]);
    const list = page.getByRole("navigation", { name: "Sessions" }).getByRole("listitem");
    await list.filter({ hasText: "Hello again" }).waitFor({ timeout: WAIT });
    assert.equal(await list.count(), 1, "only the new server's conversation is listed");
    await finish(page, "restart-same-token");
  } finally {
    await app.close();
  }
});

test("in chromium, nodes on Redis: a chat started on node A's page is listed on node B's page, opens with its history there, and continues; a turn whose node dies shows cut off after Stop", async () => {
  const { browser } = await shared();
  await using redis = await RedisServer.start();
  const args = ["--delay-ms", "5", "--redis", redis.url];
  // One token for all, as `npm run cluster` starts them; node C talks slowly, to die mid-answer.
  const env = { SWITCHBOARD_TOKEN: "one-token-for-all" };
  const [a, b, c] = await Promise.all([
    startApp(args, env),
    startApp(args, env),
    startApp(["--delay-ms", "200", "--redis", redis.url], env),
  ]);
  try {
    const onA = await openPage(browser, a.url);
    await connected(onA);
    await send(onA, "Hello from node A");
    await untilStatus(onA, "complete");
    await finish(onA, "redis-node-a");
    // Another node lists a conversation from its state as last saved, which may be up to a second behind.
    const observer = connect<AgentGateway>(b.wsUrl, {
      token: env.SWITCHBOARD_TOKEN,
      WebSocket: await webSocketClass(),
      reconnect: false,
    });
    try {
      for (
        let tries = 0;
        !(await observer.call("session.list", {})).sessions.some((s) => s.turns === 1 && !s.running);
        tries++
      ) {
        assert.ok(tries < 50, "node B lists the finished turn within 5 s");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      observer.close();
    }

    // Node B is another origin: a fresh page there, as a user opening the URL it printed.
    const onB = await openPage(browser, b.url);
    await connected(onB);
    const list = onB.getByRole("navigation", { name: "Sessions" });
    await list.getByRole("button", { name: /Hello from node A/ }).click();
    await onB.locator(".turn .prompt", { hasText: "Hello from node A" }).waitFor();
    assert.deepEqual(await shownParts(onB), [demoScript("Hello from node A").intro]);
    assert.equal(await onB.locator(".turn").last().getAttribute("data-status"), "complete");
    await send(onB, "And hello from node B");
    await onB.locator(".turn").nth(1).waitFor();
    await untilStatus(onB, "complete");
    assert.deepEqual(await shownParts(onB), [demoScript("And hello from node B").intro]);
    assert.equal(await onB.locator(".turn").count(), 2);

    // A turn run by node C (another client's prompt), which dies mid-answer: Stop on B ends it as cut off.
    const sessionId = await onB.evaluate(() => sessionStorage.getItem("switchboard.session"));
    const onC = connect<AgentGateway>(c.wsUrl, {
      token: env.SWITCHBOARD_TOKEN,
      WebSocket: await webSocketClass(),
      reconnect: false,
    });
    void onC.call("prompt.submit", { session_id: sessionId!, text: "A story from node C" }).catch(() => {});
    await untilWords(onB, 2);
    await c.kill("SIGKILL");
    onC.close();
    // Stop asks the dead node, which cannot answer: once its lease has lapsed (3 s), B takes the chat over.
    await onB.getByRole("button", { name: "Stop" }).click();
    await untilStatus(onB, "cut");
    assert.match(await onB.locator(".turn").last().locator(".answer .status").innerText(), /^Cut off/);
    await send(onB, "Still there?");
    await onB.locator(".turn").nth(3).waitFor();
    await untilStatus(onB, "complete");
    assert.deepEqual(await shownParts(onB), [demoScript("Still there?").intro]);
    await finish(onB, "redis-node-b");
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});
