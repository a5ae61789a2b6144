/**
 * `rpc.discover`: an OpenRPC document listing every method, with each valibot params schema
 * as JSON Schema. Other Standard Schemas are listed with an open schema (`{}`).
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import type { GenericSchema } from "valibot";
import type { MethodEntry } from "./method.ts";

type JsonSchema = Record<string, unknown>;

interface ContentDescriptor {
  name: string;
  schema: JsonSchema;
  required?: boolean;
}

/** Builds the OpenRPC document for `methods`. */
export function openRpcDocument(title: string, version: string, methods: Iterable<MethodEntry>): JsonSchema {
  const list = [];
  for (const entry of methods) {
    list.push({ name: entry.name, ...describeParams(entry), result: { name: "result", schema: {} } });
  }
  list.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { openrpc: "1.3.2", info: { title, version }, methods: list };
}

function describeParams(entry: MethodEntry): { params: ContentDescriptor[]; paramStructure: string } {
  const schema = entry.params ? paramsJsonSchema(entry.params) : undefined;
  if (!schema) return { params: [], paramStructure: "either" };
  const properties = schema.properties as Record<string, JsonSchema> | undefined;
  if (schema.type !== "object" || !properties) {
    return { params: [{ name: "params", schema }], paramStructure: "either" };
  }
  const required = new Set((schema.required as string[] | undefined) ?? []);
  return {
    params: Object.entries(properties).map(([name, property]) => ({
      name,
      schema: property,
      required: required.has(name),
    })),
    paramStructure: "by-name",
  };
}

function paramsJsonSchema(schema: NonNullable<MethodEntry["params"]>): JsonSchema {
  if (schema["~standard"].vendor !== "valibot") return {};
  const { $schema: _ignored, ...json } = toJsonSchema(schema as GenericSchema, { errorMode: "ignore" }) as JsonSchema;
  return json;
}
