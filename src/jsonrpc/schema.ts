/**
 * The wire shapes of requests, notifications and responses (JSON-RPC 2.0 §4–§5) as valibot
 * schemas. They are the contract: `classifyValid` (message.ts) checks the same shapes by hand on
 * the hot path, and `decode` (codec.ts) asks these schemas only to explain why a message is invalid.
 */
import * as v from "valibot";
import type { Id } from "./message.ts";

export const IdSchema: v.GenericSchema<Id> = v.union([v.string(), v.number(), v.null()]);

/** Params are structured: an array (by position) or an object (by name). */
export const ParamsSchema = v.union([v.array(v.unknown()), v.record(v.string(), v.unknown())]);

const version = v.literal("2.0");

export const RequestSchema = v.object({
  jsonrpc: version,
  method: v.string(),
  params: v.optional(ParamsSchema),
  id: IdSchema,
});

export const NotificationSchema = v.object({
  jsonrpc: version,
  method: v.string(),
  params: v.optional(ParamsSchema),
});

export const ErrorObjectSchema = v.object({
  code: v.pipe(v.number(), v.integer()),
  message: v.string(),
  data: v.optional(v.unknown()),
});

export const SuccessResponseSchema = v.object({ jsonrpc: version, id: IdSchema, result: v.unknown() });
export const ErrorResponseSchema = v.object({ jsonrpc: version, id: IdSchema, error: ErrorObjectSchema });

/** Any single message: a request or notification (has `method`) or a response. */
export const MessageSchema = v.union([RequestSchema, NotificationSchema, SuccessResponseSchema, ErrorResponseSchema]);
