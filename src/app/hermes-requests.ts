/**
 * Hermes' ways of answering the agent's questions besides a reply to the server request
 * itself: `client.capabilities` (which decides whether a connection gets server requests),
 * `approval.respond`, `approval.pending`, `clarify.respond` and `request.answer`. Each finds
 * the open server request the question made (`hermes-asker.ts`) and answers it as the client's
 * reply would, so the first answer wins whichever way it came.
 */
import * as v from "valibot";
import { type HandlerContext, method, type OpenRequest, RpcError } from "../mod.ts";
import { APPROVAL_CHOICES } from "./hermes-asker.ts";
import { HERMES_ERRORS } from "./hermes-errors.ts";

/** The server requests the app may send, as `client.capabilities` lists them. */
const SERVER_REQUESTS = ["approval", "clarify"];

const SessionId = v.pipe(v.string(), v.maxLength(128));
const RequestId = v.pipe(v.string(), v.minLength(1), v.maxLength(128));

/** The open server requests of the caller's session `id` (-32001 if it has none such). */
export async function openRequestsOf(ctx: HandlerContext, id: string): Promise<OpenRequest[]> {
  // After every event: only the open requests, no events.
  return (await ctx.sessions.since(id, Number.MAX_SAFE_INTEGER)).open_requests;
}

/** `params.request_id` of a request the hermes asker opened. */
function requestIdOf(request: OpenRequest): unknown {
  return (request.params as { request_id?: unknown } | undefined)?.request_id;
}

/**
 * The first open request that matches, in session `sessionId`, or else in any of the caller's
 * sessions (those on this node first, then the others, newest first): with `clarify.respond`
 * and `request.answer` hermes' clients may name no session. A session that ends meanwhile is
 * passed over.
 */
async function findOpen(
  ctx: HandlerContext,
  sessionId: string | undefined,
  match: (request: OpenRequest) => boolean,
): Promise<{ sessionId: string; request: OpenRequest } | undefined> {
  if (sessionId !== undefined) {
    const request = (await openRequestsOf(ctx, sessionId)).find(match);
    return request && { sessionId, request };
  }
  const search = async (ids: string[]) => {
    for (const id of ids) {
      const request = (await openRequestsOf(ctx, id).catch(() => [])).find(match);
      if (request) return { sessionId: id, request };
    }
    return undefined;
  };
  const here = ctx.sessions.list().map((s) => s.id).reverse();
  return await search(here) ??
    await search((await ctx.sessions.all()).map((s) => s.id).reverse().filter((id) => !here.includes(id)));
}

function noPending(what: string, id: string): RpcError {
  return new RpcError(HERMES_ERRORS.noPending, `no pending ${what} request: ${id}`);
}

/** The answering methods of hermes mode. */
export function hermesRequestMethods() {
  return {
    "client.capabilities": method({
      params: v.looseObject({ server_requests: v.optional(v.union([v.boolean(), v.array(v.string())])) }),
      handler: (p, ctx) => {
        // `true`, or a list of the methods the client handles (some builds send one).
        const takes = p.server_requests === true || (Array.isArray(p.server_requests) && p.server_requests.length > 0);
        ctx.connection.capabilities.serverRequests = takes;
        return { server_requests: takes ? SERVER_REQUESTS : [], declines_not_shown: false };
      },
    }),
    "approval.respond": method({
      params: v.looseObject({
        session_id: SessionId,
        choice: v.optional(v.picklist(APPROVAL_CHOICES), "deny"),
        request_id: v.optional(RequestId),
        all: v.optional(v.boolean(), false),
      }),
      handler: async (p, ctx) => {
        const open = (await openRequestsOf(ctx, p.session_id)).filter((r) => r.method === "approval");
        // One by id; else all of them with `all`; else the oldest.
        const chosen = p.request_id !== undefined
          ? open.filter((r) => requestIdOf(r) === p.request_id)
          : p.all
          ? open
          : open.slice(0, 1);
        let resolved = 0;
        for (const request of chosen) {
          if (await ctx.sessions.answer(p.session_id, request.id, { choice: p.choice })) resolved++;
        }
        return { resolved };
      },
    }),
    "approval.pending": method({
      params: v.looseObject({ session_id: SessionId }),
      handler: async (p, ctx) => ({
        approvals: (await openRequestsOf(ctx, p.session_id)).filter((r) => r.method === "approval").map((r) =>
          r.params
        ),
      }),
    }),
    "clarify.respond": method({
      params: v.looseObject({
        request_id: RequestId,
        answer: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(20_000))), null),
        session_id: v.optional(SessionId),
      }),
      handler: async (p, ctx) => {
        const found = await findOpen(
          ctx,
          p.session_id,
          (r) => r.method === "clarify" && requestIdOf(r) === p.request_id,
        );
        // The asker's question has one qid: the request id.
        const answered = found &&
          await ctx.sessions.answer(found.sessionId, found.request.id, { answers: { [p.request_id]: p.answer } });
        if (!answered) throw noPending("clarify", p.request_id);
        return { status: "ok" };
      },
    }),
    "request.answer": method({
      params: v.looseObject({ id: RequestId, result: v.unknown(), session_id: v.optional(SessionId) }),
      handler: async (p, ctx) => {
        const found = await findOpen(ctx, p.session_id, (r) => r.id === p.id);
        const answered = found && await ctx.sessions.answer(found.sessionId, p.id, p.result ?? null);
        if (!answered) throw noPending("server", p.id);
        return { status: "ok" };
      },
    }),
  };
}
