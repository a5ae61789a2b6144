/**
 * How a turn asks its user in hermes mode: each question is both a session event of hermes'
 * older form (`approval.request`, `clarify.request`, answered by the `*.respond` methods) and
 * a server → client request of its newer form (`approval`, `clarify`), which only connections
 * that announced server requests receive. Whichever answer comes first settles the request.
 */
import type { SessionHandle } from "../mod.ts";
import type { ApprovalQuestion, Asker, ClarifyQuestion } from "./asker.ts";

/** The choices of an approval, as hermes offers them. */
export const APPROVAL_CHOICES = ["once", "session", "always", "deny"] as const;

/** The choices that let the tool run; "session" and "always" also let it run unasked for the rest of the session. */
const ALLOWING = new Set<unknown>(["once", "session", "always"]);
const REMEMBERED = new Set<unknown>(["session", "always"]);

/** A random request id: `clarify.respond` names a question by it alone, so it must be unique across sessions. */
function requestId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** `name {args}` as one line, the approval's `command`. */
function commandOf(name: string, args: Record<string, unknown>): string {
  return `${name} ${JSON.stringify(args)}`;
}

/**
 * The hermes asker. Approval: the event `approval.request {request_id, command, description,
 * choices, tool_name, …}` and the request `approval` (the same payload and `session_id`) →
 * `{choice, all?}`; "once", "session" and "always" allow, anything else denies, and "session"
 * or "always" make later uses of that tool in the session run without asking (kept on this
 * node while the session lives: there is no permanent allow-list). Clarify: the event
 * `clarify.request {request_id, question, choices}` and the request `clarify {session_id,
 * request_id, questions: [{qid, question, choices, multi_select: false}]}` → `{answers: {qid:
 * string | null}}`.
 */
export function hermesAsker(): Asker {
  /** The tools allowed for the rest of their session: weakly held, gone with the session. */
  const allowed = new WeakMap<SessionHandle, Set<string>>();
  const allowedIn = (session: SessionHandle): Set<string> => {
    let tools = allowed.get(session);
    if (!tools) allowed.set(session, tools = new Set());
    return tools;
  };
  return {
    async approve(session, question: ApprovalQuestion, signal) {
      if (allowed.get(session)?.has(question.name)) return true;
      const payload = {
        request_id: requestId(),
        command: commandOf(question.name, question.args),
        description: `The agent wants to run the tool ${question.name}.`,
        choices: APPROVAL_CHOICES,
        allow_session: true,
        // Nothing outlives the session: "always" is taken as "session".
        allow_permanent: false,
        tool_name: question.name,
        tool_id: question.tool_id,
        turn_id: question.turn_id,
        args: question.args,
      };
      // The request is open before the event goes out, so an answer to the event finds it.
      const reply = session.request("approval", { session_id: session.id, ...payload }, { signal });
      session.emit("approval.request", payload);
      const choice = ((await reply) as { choice?: unknown } | null)?.choice;
      if (REMEMBERED.has(choice)) allowedIn(session).add(question.name);
      return ALLOWING.has(choice);
    },
    async clarify(session, question: ClarifyQuestion, signal) {
      const request_id = requestId();
      const asked = { question: question.question, choices: question.choices };
      const reply = session.request("clarify", {
        session_id: session.id,
        request_id,
        questions: [{ qid: request_id, ...asked, multi_select: false }],
      }, { signal });
      session.emit("clarify.request", {
        request_id,
        ...asked,
        clarify_id: question.clarify_id,
        turn_id: question.turn_id,
      });
      const answer = ((await reply) as { answers?: Record<string, unknown> } | null)?.answers?.[request_id];
      return typeof answer === "string" ? answer : null;
    },
  };
}
