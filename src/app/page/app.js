// The web chat: one Switchboard client (switchboard/client, bundled by the server at startup)
// that keeps connected and resumes on its own. A conversation is drawn from `session.history`
// (a snapshot at some seq) and then from the session events after that seq, so a reload or a
// dropped connection shows every word once: events at or below the drawn seq are skipped.
import { connect, ConnectionLost, ErrorCode, RpcError } from "../../client/mod.ts";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "switchboard.token";
const SESSION_KEY = "switchboard.session";
const STATE_TEXT = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};
const STATUS_TEXT = {
  interrupted: "Interrupted.",
  error: "The agent failed: ",
  // The server that ran it stopped (or, for an in-memory one, the conversation is gone).
  cut: "Cut off: this answer will not finish.",
};
const HINT = "Enter sends; Shift+Enter starts a new line.";
const EMPTY_TEXT = "Ask the agent something. Mention files to see a tool request that needs your approval, " +
  "or ask it to clarify to get a question with choices.";
const BUSY_HINT = "The agent is answering: wait for it to finish, or press Stop.";

/** The token from the URL fragment (then kept for reloads and removed from the address bar), or the kept one. */
function takeToken() {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return fromUrl ?? sessionStorage.getItem(TOKEN_KEY);
}

const token = takeToken();
/** Whether this page has been connected: a token refused after that means the server restarted. */
let wasOpen = false;
/** Whether the server keeps its conversations in a shared store (Redis), so they outlive it: `gateway.ready`'s `shared`. */
let shared = false;

/**
 * Trades the token for a single-use ticket before each connection attempt. A page cannot read
 * why a WebSocket upgrade failed, but it can read this answer: 401 means the token is refused,
 * and trying again cannot help.
 */
async function fetchTicket() {
  const response = await fetch("/api/ticket", {
    method: "POST",
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (response.status === 401) {
    tokenRefused();
    throw new Error("access token refused");
  }
  if (!response.ok) throw new Error(`the ticket route answered HTTP ${response.status}`);
  return (await response.json()).ticket;
}

const client = connect(location.origin.replace(/^http/, "ws") + "/api/ws", { ticket: fetchTicket });

/**
 * The conversation on screen: its session, the seq it is drawn up to, and its turns.
 * `buffer` holds its events while its history is being fetched; `sending` is set while a
 * prompt for it is on its way.
 */
let view = blankView();
/**
 * Open server requests (tool approvals and questions): `askKey(session, tool or clarify id)` →
 * the function that answers it.
 */
const asks = new Map();

function blankView(id = null) {
  return { id, seq: 0, buffer: null, turns: new Map(), sending: false };
}

// Tool and clarify ids count per session, so the session is part of the key.
const askKey = (sessionId, id) => `${sessionId} ${id}`;

// ---- connection state

client.onStateChange((state) => {
  $("connection").dataset.state = state;
  $("connection-text").textContent = STATE_TEXT[state];
  if (state === "open") {
    wasOpen = true;
    void refreshSessions();
  }
  updateComposer();
});

client.ready.then((ready) => {
  $("agent").textContent = `· ${ready.agent}`;
  shared = ready.shared === true;
}, () => {});

client.onResume((report) => {
  if (report.session_id !== view.id) return;
  if (report.error) {
    if (!report.epochChanged) return lose("That conversation has ended.");
    return lose(
      shared
        ? "This conversation is gone: the server's Redis lost it (it restarted without keeping its data)."
        : "The server restarted, so this conversation is gone (the server keeps conversations in memory only).",
    );
  }
  // Events were evicted while we were away: draw it again from its history.
  if (report.truncated) void openSession(view.id);
});

/** The server refused the token (401): stop connecting and say what to do. */
function tokenRefused() {
  client.close();
  cutRunningTurns();
  $("session-list").replaceChildren(); // they were the old server's
  if (!token) notice("No access token: open the URL that `npm start` printed (it ends in #token=…).");
  else if (wasOpen && shared) {
    notice(
      "The server restarted with a new access token, so this page cannot reconnect. Open the URL the server printed: " +
        "the conversations are kept in Redis, and listed there (set SWITCHBOARD_TOKEN to keep one token across restarts).",
    );
  } else if (wasOpen) {
    notice(
      "The server restarted with a new access token, so this page cannot reconnect, and its conversations are gone. " +
        "Open the URL the server printed (set SWITCHBOARD_TOKEN to keep one token across restarts).",
    );
  } else {
    notice(
      "This access token is invalid or outdated (the server picks a new one each time it starts). " +
        "Open the URL that `npm start` printed (it ends in #token=…).",
    );
  }
}

// ---- session events

/** Events that change what the session list shows. */
const LISTED = ["message.user", "message.complete", "session.closed", "session.interrupted"];

for (
  const type of [
    "message.user",
    "message.delta",
    "status.update",
    "tool.start",
    "tool.complete",
    "clarify.start",
    "clarify.complete",
    "message.complete",
    "session.closed",
    // With a shared store: the node running a turn died, and another took the session over.
    "session.interrupted",
  ]
) {
  client.on(type, (event) => {
    if (LISTED.includes(type)) void refreshSessions();
    if (event.session_id !== view.id) return;
    if (view.buffer) view.buffer.push(event);
    else apply(event);
  });
}

function apply(event) {
  if (event.seq <= view.seq) return; // drawn already (from the history, or before a reconnect)
  view.seq = event.seq;
  const log = $("log");
  // Follow the answer down only if the reader is at the bottom (not reading back).
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const p = event.payload;
  const turn = view.turns.get(p?.turn_id);
  // A turn whose start was evicted from the replay: the truncated resume redraws from history.
  if (!turn && !["message.user", "session.closed", "session.interrupted"].includes(event.type)) return;
  // A status line lasts until the turn's next event.
  if (turn) turn.activity = null;
  switch (event.type) {
    case "message.user":
      addTurn({ turn_id: p.turn_id, prompt: p.text, parts: [], status: "running" });
      break;
    case "message.delta": {
      const last = turn.parts.at(-1);
      if (last?.kind === "text") {
        last.text += p.text;
        last.node.appendData(p.text);
      } else addPart(turn, { kind: "text", text: p.text });
      break;
    }
    case "status.update":
      turn.activity = p.text;
      drawStatus(turn);
      break;
    case "tool.start":
      addPart(turn, { kind: "tool", tool_id: p.tool_id, name: p.name, args: p.args });
      drawStatus(turn);
      break;
    case "tool.complete": {
      const part = turn.parts.find((q) => q.tool_id === p.tool_id);
      Object.assign(part, { outcome: p.outcome, result: p.result });
      drawTool(part);
      drawStatus(turn);
      break;
    }
    case "clarify.start":
      addPart(turn, { kind: "clarify", clarify_id: p.clarify_id, question: p.question, choices: p.choices });
      drawStatus(turn);
      break;
    case "clarify.complete": {
      const part = turn.parts.find((q) => q.clarify_id === p.clarify_id);
      part.answer = p.answer;
      drawClarify(part);
      drawStatus(turn);
      break;
    }
    case "message.complete":
      finishTurn(turn, p.status, p.error);
      break;
    case "session.interrupted":
      // Every running turn is gone (the conversation goes on): as the server's history records it.
      cutRunningTurns();
      break;
    case "session.closed":
      return lose(
        p?.reason === "store_lost"
          ? "This conversation is gone: the server's Redis lost it (it restarted without keeping its data)."
          : "This conversation has ended.",
      );
  }
  if (atBottom) log.scrollTop = log.scrollHeight;
  updateComposer();
}

// ---- opening a conversation

/** Draws session `id` from its history, then follows its events after the history's seq. */
async function openSession(id) {
  view = blankView(id);
  view.buffer = [];
  sessionStorage.setItem(SESSION_KEY, id);
  clearLog();
  notice(null);
  markCurrent();
  updateComposer();
  try {
    const snapshot = await client.call("session.history", { session_id: id }, { idempotent: true });
    if (view.id !== id) return; // another one was opened meanwhile
    for (const turn of snapshot.turns) addTurn(turn);
    view.seq = snapshot.seq;
    $("log").scrollTop = $("log").scrollHeight;
    const buffered = view.buffer;
    view.buffer = null;
    for (const event of buffered) apply(event);
    updateComposer();
    // A followed session is attached and resumed by the client itself; any other is attached here.
    if (!client.sessions.has(id)) {
      client.follow(id, snapshot.seq);
      if (client.state === "open") {
        await client.call("session.resume", { session_id: id, after_seq: snapshot.seq }, { idempotent: true });
      }
    }
  } catch (error) {
    if (view.id !== id) return;
    if (error instanceof RpcError && error.code === ErrorCode.SessionNotFound) {
      lose(
        shared
          ? "That conversation is gone (it ended, or the server's Redis lost it)."
          : "That conversation is gone (the server restarted or it ended).",
      );
    } else notice(`Could not open the conversation: ${error.message}`);
  }
}

/** The conversation on screen has ended: forget it, keep what it said on screen, offer a new chat. */
function lose(message) {
  if (view.id) client.unfollow(view.id);
  sessionStorage.removeItem(SESSION_KEY);
  cutRunningTurns();
  view = blankView();
  markCurrent();
  updateComposer();
  notice(message, { newChat: true });
  void refreshSessions();
}

function newChat() {
  view = blankView();
  sessionStorage.removeItem(SESSION_KEY);
  clearLog();
  notice(null);
  markCurrent();
  updateComposer();
  closeDrawer();
  $("prompt").focus();
}

// ---- drawing

function clearLog() {
  $("log").replaceChildren($("empty") ?? emptyNote());
}

function emptyNote() {
  const p = el("p", "empty", EMPTY_TEXT);
  p.id = "empty";
  return p;
}

function addTurn(record) {
  $("empty")?.remove();
  const article = el("article", "turn");
  article.dataset.turn = record.turn_id;
  const you = el("div", "prompt");
  you.append(el("h3", "who", "You"), el("p", "", record.prompt));
  const answer = el("div", "answer");
  // The status line stays last in the agent's card: parts are inserted before it.
  const statusLine = el("p", "status");
  answer.append(el("h3", "who", "Agent"), statusLine);
  article.append(you, answer);
  $("log").append(article);
  const turn = { turn_id: record.turn_id, status: record.status, parts: [], article, answer, statusLine };
  view.turns.set(record.turn_id, turn);
  for (const part of record.parts) addPart(turn, { ...part });
  if (record.status === "running") {
    article.setAttribute("aria-busy", "true");
    drawStatus(turn);
  } else finishTurn(turn, record.status, record.error);
}

function addPart(turn, part) {
  turn.parts.push(part);
  if (part.kind === "text") {
    part.node = document.createTextNode(part.text);
    const p = el("p", "text");
    p.append(part.node);
    turn.answer.insertBefore(p, turn.statusLine);
  } else {
    part.element = el("div", part.kind);
    part.element.setAttribute("role", "group");
    part.element.setAttribute(
      "aria-label",
      part.kind === "tool" ? `Tool request: ${part.name}` : `Question: ${part.question}`,
    );
    turn.answer.insertBefore(part.element, turn.statusLine);
    drawPart(part);
  }
}

function drawPart(part) {
  if (part.kind === "tool") drawTool(part);
  else drawClarify(part);
}

/** Redraws the tool or question `id` of the conversation on screen (its buttons came or went). */
function drawPartById(id) {
  for (const turn of view.turns.values()) {
    const part = turn.parts.find((q) => q.tool_id === id || q.clarify_id === id);
    if (part) return drawPart(part);
  }
}

/** A button that answers the open request `key` with `reply`, then shows `pending` in `box` after `ask`. */
function answerButton(label, className, key, reply, box, ask, pending) {
  const button = el("button", className, label);
  button.type = "button";
  button.addEventListener("click", () => settle(key, reply, box, ask, pending));
  return button;
}

function settle(key, reply, box, ask, pending) {
  const answer = asks.get(key);
  asks.delete(key);
  answer?.(reply);
  box.replaceChildren(ask, el("p", "outcome", pending));
  $("prompt").focus(); // the buttons are gone: keep keyboard users somewhere useful
}

/** A tool part: what the agent asks, then buttons (while this page may answer) or the outcome. */
function drawTool(part) {
  const box = part.element;
  const ask = el("p", "ask");
  ask.append(
    "The agent wants to run ",
    el("code", "", part.name),
    " with ",
    el("code", "", JSON.stringify(part.args)),
    ".",
  );
  box.replaceChildren(ask);
  if (part.outcome) {
    box.dataset.outcome = part.outcome;
    box.append(el("p", "outcome", { allowed: "Allowed.", denied: "Denied.", cancelled: "Cancelled." }[part.outcome]));
    if (part.result !== undefined) box.append(el("pre", "output", part.result));
    return;
  }
  const key = askKey(view.id, part.tool_id);
  if (!asks.has(key)) {
    box.append(el("p", "outcome", "Waiting for approval…"));
    return;
  }
  const choices = el("div", "choices");
  choices.append(
    answerButton("Allow", "allow", key, { decision: "allow" }, box, ask, "Allowing…"),
    answerButton("Deny", "deny", key, { decision: "deny" }, box, ask, "Denying…"),
  );
  box.append(choices);
}

/**
 * A question part: the agent's question, then a button per choice (or a text field when it
 * offers none) and Decline, while this page may answer; else the answer.
 */
function drawClarify(part) {
  const box = part.element;
  const ask = el("p", "ask", part.question);
  box.replaceChildren(ask);
  if (part.answer !== undefined) {
    box.dataset.answered = part.answer === null ? "no" : "yes";
    box.append(el("p", "outcome", part.answer === null ? "Not answered." : `Answered: ${part.answer}`));
    return;
  }
  const key = askKey(view.id, part.clarify_id);
  if (!asks.has(key)) {
    box.append(el("p", "outcome", "Waiting for an answer…"));
    return;
  }
  const choices = el("div", "choices");
  for (const choice of part.choices) {
    choices.append(answerButton(choice, "choice", key, { answer: choice }, box, ask, `Answering “${choice}”…`));
  }
  if (part.choices.length === 0) {
    const form = el("form", "free-answer");
    const input = el("input");
    input.required = true;
    input.setAttribute("aria-label", "Your answer");
    const send = el("button", "choice", "Answer");
    send.type = "submit";
    form.append(input, send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      settle(key, { answer: input.value }, box, ask, `Answering “${input.value}”…`);
    });
    choices.append(form);
  }
  choices.append(answerButton("Decline", "deny", key, { answer: null }, box, ask, "Declining…"));
  box.append(choices);
}

/** The line at the end of the agent's card: what it is doing while the turn runs, how the turn ended after. */
function drawStatus(turn) {
  const running = turn.status === "running";
  turn.statusLine.classList.toggle("working", running);
  if (running) {
    const approving = turn.parts.some((part) => part.kind === "tool" && !part.outcome);
    const asked = turn.parts.some((part) => part.kind === "clarify" && part.answer === undefined);
    turn.statusLine.textContent = approving
      ? "Waiting for your approval…"
      : asked
      ? "Waiting for your answer…"
      : turn.activity ?? "Working…";
  } else turn.statusLine.textContent = turn.status in STATUS_TEXT ? STATUS_TEXT[turn.status] + (turn.error ?? "") : "";
}

function finishTurn(turn, status, error) {
  turn.status = status;
  turn.error = error;
  turn.article.removeAttribute("aria-busy");
  turn.article.dataset.status = status;
  drawStatus(turn);
  updateComposer();
}

/** The turns on screen that will never finish (their conversation is gone): say so, drop their buttons. */
function cutRunningTurns() {
  for (const turn of view.turns.values()) {
    if (turn.status !== "running") continue;
    for (const part of turn.parts) {
      if (part.kind === "tool" && !part.outcome) {
        asks.delete(askKey(view.id, part.tool_id));
        part.outcome = "cancelled";
      } else if (part.kind === "clarify" && part.answer === undefined) {
        asks.delete(askKey(view.id, part.clarify_id));
        part.answer = null;
      } else continue;
      drawPart(part);
    }
    finishTurn(turn, "cut");
  }
}

/** One prompt at a time: Send waits while a turn of this conversation runs or a prompt is on its way. */
function updateComposer() {
  const running = [...view.turns.values()].some((turn) => turn.status === "running");
  const busy = running || view.sending;
  $("send").disabled = busy || client.state === "closed";
  $("stop").disabled = !running;
  $("prompt-hint").textContent = busy ? BUSY_HINT : HINT;
}

/** Shows `text` above the conversation (null hides it), with a "Start a new chat" button if `newChat`. */
function notice(text, { newChat = false } = {}) {
  $("notice").hidden = !text;
  $("notice-text").textContent = text ?? "";
  $("notice-new-chat").hidden = !newChat;
}

function markCurrent() {
  for (const button of $("session-list").querySelectorAll("button")) {
    if (button.dataset.session === view.id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- past sessions

let listing = Promise.resolve();

/**
 * Redraws the list of sessions (one request at a time; the latest wins), and follows each:
 * a followed session stays attached, so the server does not end it while this page is open.
 */
function refreshSessions() {
  listing = listing.then(async () => {
    if (client.state !== "open") return;
    const { sessions } = await client.call("session.list", {}).catch(() => ({ sessions: null }));
    if (!sessions) return;
    for (const s of sessions) {
      if (client.sessions.has(s.session_id)) continue;
      client.follow(s.session_id, s.seq);
      client.call("session.resume", { session_id: s.session_id, after_seq: s.seq }, { idempotent: true })
        .catch(() => client.unfollow(s.session_id));
    }
    const items = sessions.map((s) => {
      const button = el("button", "session");
      button.type = "button";
      button.dataset.session = s.session_id;
      button.title = s.title;
      const time = el(
        "time",
        "",
        new Date(s.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
      );
      time.dateTime = new Date(s.created_at).toISOString();
      button.append(el("span", "title", s.title), time);
      button.addEventListener("click", () => {
        closeDrawer();
        void openSession(s.session_id);
      });
      const item = el("li");
      item.append(button);
      return item;
    });
    $("session-list").replaceChildren(...items);
    markCurrent();
  });
  return listing;
}

// ---- the sessions drawer (narrow screens; on wide ones the list is always shown and its toggle hidden)

function drawerOpen() {
  return document.body.dataset.drawer === "open";
}

function openDrawer() {
  document.body.dataset.drawer = "open";
  $("sessions-toggle").setAttribute("aria-expanded", "true");
  $("new-chat").focus();
}

function closeDrawer() {
  if (!drawerOpen()) return;
  delete document.body.dataset.drawer;
  $("sessions-toggle").setAttribute("aria-expanded", "false");
  if ($("sessions").contains(document.activeElement)) $("sessions-toggle").focus();
}

$("sessions-toggle").addEventListener("click", () => (drawerOpen() ? closeDrawer() : openDrawer()));
$("sessions-close").addEventListener("click", closeDrawer);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeDrawer();
});
// The backdrop is the body's ::after: a click on it lands on the body itself.
document.body.addEventListener("click", (event) => {
  if (event.target === document.body) closeDrawer();
});

// ---- approvals and questions (server → client requests)

client.handle("approval", (params, options) => ask(params.session_id, params.tool_id, options));
client.handle("clarify", (params, options) => ask(params.session_id, params.clarify_id, options));

/** Shows the buttons of the tool or question `id`, and resolves with what the user picks. */
function ask(sessionId, id, { signal }) {
  return new Promise((resolve, reject) => {
    const key = askKey(sessionId, id);
    const redraw = () => sessionId === view.id && drawPartById(id);
    asks.set(key, resolve);
    // Cancelled (the turn was interrupted, or the session ended): the buttons go, and the
    // handler settles so that nothing is left waiting on it.
    signal.addEventListener(
      "abort",
      () => {
        asks.delete(key);
        redraw();
        reject(signal.reason);
      },
      { once: true },
    );
    redraw();
  });
}

// ---- the composer

async function submit() {
  const text = $("prompt").value.trim();
  if (!text || $("send").disabled) return;
  $("prompt").value = "";
  notice(null);
  let target = view;
  target.sending = true;
  updateComposer();
  try {
    if (!target.id) {
      try {
        const { session_id } = await client.call("session.create", {});
        target.sending = false;
        target = view = blankView(session_id);
        target.sending = true;
        sessionStorage.setItem(SESSION_KEY, session_id);
        clearLog();
        void refreshSessions();
      } catch (error) {
        $("prompt").value ||= text; // not sent: give the text back
        return notice(`Could not start a conversation: ${error.message}`);
      }
    }
    // No deadline: the call lasts as long as the answer, approvals and questions included.
    await client.call("prompt.submit", { session_id: target.id, text }, { timeoutMs: Infinity });
  } catch (error) {
    // A drop mid-answer loses only the call's reply; the answer itself arrives as events.
    if (!(error instanceof ConnectionLost)) notice(`Could not send: ${error.message}`);
  } finally {
    target.sending = false;
    updateComposer();
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  void submit();
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    void submit();
  }
});
$("stop").addEventListener("click", () => {
  if (view.id) {
    client.call("session.interrupt", { session_id: view.id }).catch((error) =>
      notice(`Could not stop: ${error.message}`)
    );
  }
});
$("new-chat").addEventListener("click", newChat);
$("notice-new-chat").addEventListener("click", newChat);

const kept = sessionStorage.getItem(SESSION_KEY);
if (kept) void openSession(kept);
