/**
 * Method definitions: what a user writes in `methods`, and the one internal form the
 * dispatcher runs (`MethodEntry`).
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { ErrorCode, RpcError } from "../jsonrpc/errors.ts";
import { toIssues } from "../jsonrpc/codec.ts";
import type { CallContext, HandlerContext } from "./context.ts";

/** A method with a params schema and options, as `method()` returns it. */
export interface MethodDefinition<P = unknown, R = unknown, I = P> {
  /** Checks params before the handler runs; params it rejects answer -32602 with `data.issues`. */
  readonly params?: StandardSchemaV1<I, P>;
  /** Run beside later requests instead of in the connection's inline queue. */
  readonly concurrent?: boolean;
  /**
   * Gets the validated params and the call's context; what it returns (or its promise resolves
   * to) is the result. An `RpcError` it throws is answered as is; anything else answers -32603.
   */
  readonly handler: (params: P, ctx: HandlerContext) => R;
  /** Marks this object as made by `method()`. */
  readonly kind: "method";
}

/** A bare function: runs inline, params unchecked. */
// deno-lint-ignore no-explicit-any -- a function typing its own params (e.g. a tuple) must fit; `unknown` would refuse it
export type BareMethod = (params: any, ctx: HandlerContext) => unknown;

/** What `methods` holds: a bare function or a `method()` definition per name. */
// deno-lint-ignore no-explicit-any -- each definition has its own params and result types (params is read both ways)
export type MethodTable = Record<string, BareMethod | MethodDefinition<any, any, any>>;

/**
 * Defines a method with validated params (any Standard Schema; valibot schemas also feed
 * `rpc.discover`) and, with `concurrent: true`, outside the connection's inline queue.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { createGateway, method } from "switchboard";
 *
 * const gateway = createGateway({
 *   methods: {
 *     "text.length": method({ params: v.object({ text: v.string() }), handler: (p) => p.text.length }),
 *   },
 * });
 * ```
 */
export function method<S extends StandardSchemaV1, R>(definition: {
  params: S;
  concurrent?: boolean;
  handler: (params: StandardSchemaV1.InferOutput<S>, ctx: HandlerContext) => R;
}): MethodDefinition<StandardSchemaV1.InferOutput<S>, R, StandardSchemaV1.InferInput<S>>;
/**
 * Defines a method without a params schema (its handler gets params unchecked, as `unknown`),
 * to run it outside the connection's inline queue with `concurrent: true`.
 */
export function method<R>(definition: {
  concurrent?: boolean;
  handler: (params: unknown, ctx: HandlerContext) => R;
}): MethodDefinition<unknown, R>;
export function method(definition: {
  params?: StandardSchemaV1;
  concurrent?: boolean;
  // deno-lint-ignore no-explicit-any -- the implementation takes every overload's handler
  handler: (params: any, ctx: HandlerContext) => unknown;
}): MethodDefinition {
  return { ...definition, kind: "method" };
}

/** How a method is scheduled on its connection. */
export type Mode = "inline" | "concurrent" | "immediate";

/** The dispatcher's form of a method. */
export interface MethodEntry {
  readonly name: string;
  readonly mode: Mode;
  readonly params: StandardSchemaV1 | undefined;
  /** Validates `params` (if there is a schema) and calls the handler: a value or a promise. */
  invoke(params: unknown, ctx: CallContext): unknown;
}

/** Normalises a table entry into a `MethodEntry`. */
export function toEntry(
  name: string,
  definition: MethodTable[string],
  mode?: Mode,
): MethodEntry {
  if (typeof definition === "function") {
    return { name, mode: mode ?? "inline", params: undefined, invoke: definition };
  }
  const { handler, params } = definition;
  return {
    name,
    mode: mode ?? (definition.concurrent ? "concurrent" : "inline"),
    params,
    invoke: params ? (value, ctx) => validated(params, value, (valid) => handler(valid, ctx)) : handler,
  };
}

/** Validates `value` with `schema` (-32602 with `data.issues` if invalid), then runs `then` with the valid value. */
export function validated(schema: StandardSchemaV1, value: unknown, then: (valid: unknown) => unknown): unknown {
  const result = schema["~standard"].validate(value);
  if (result instanceof Promise) return result.then((settled) => then(valueOrThrow(settled)));
  return then(valueOrThrow(result));
}

function valueOrThrow(result: StandardSchemaV1.Result<unknown>): unknown {
  if (result.issues) throw new RpcError(ErrorCode.InvalidParams, "Invalid params", { issues: toIssues(result.issues) });
  return result.value;
}
