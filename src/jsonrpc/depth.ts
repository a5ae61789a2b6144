/**
 * Nesting depth of JSON, measured without recursion, so a hostile 100,000-deep array is
 * refused before anything recursive (a schema, `JSON.stringify`) can overflow the stack —
 * and, for long frames, before `JSON.parse` spends milliseconds building it.
 */

/** True if `value` nests arrays/objects deeper than `max` levels (a scalar is depth 0). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const node = stack.pop() as object;
    const depth = depths.pop()!;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) {
        stack.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/**
 * How deep JSON text nests its brackets (brackets inside strings do not count), or the first
 * depth past `stopAbove`: the scan stops there, so a hostile frame costs a few hundred
 * characters of scanning; a well-formed frame costs one pass (about a nanosecond per character).
 */
export function textDepth(text: string, stopAbove: number): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string, escapes included.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > stopAbove) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/**
 * The `id` of a request frame when it and the `method` come before any nested value at the top
 * level (`{"jsonrpc":"2.0","id":7,"method":"run","params":[[[…`), read without parsing the
 * rest; else null. For a frame refused whole as too deep, so that its error still names the
 * request (a response, which has no `method`, is never answered).
 */
export function idBeforeNesting(text: string): string | number | null {
  let id: string | number | null = null;
  let method = false;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b) return null;
  for (;;) {
    i = skipSpace(text, i + 1);
    if (text.charCodeAt(i) !== 0x22) break;
    const keyEnd = stringEnd(text, i);
    const key = text.slice(i, keyEnd);
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a) break;
    i = skipSpace(text, i + 1);
    const c = text.charCodeAt(i);
    // A nested value: the rest is what the depth scan refused to read.
    if (c === 0x7b || c === 0x5b) break;
    const valueEnd = c === 0x22 ? stringEnd(text, i) : scalarEnd(text, i);
    if (key === '"method"') method = true;
    else if (key === '"id"') id = scalarId(text.slice(i, valueEnd));
    i = skipSpace(text, valueEnd);
    if (text.charCodeAt(i) !== 0x2c) break;
  }
  return method ? id : null;
}

/** A string or number id from its JSON text; null for anything else. */
function scalarId(json: string): string | number | null {
  try {
    const id: unknown = JSON.parse(json);
    return typeof id === "string" || typeof id === "number" ? id : null;
  } catch {
    return null;
  }
}

function skipSpace(text: string, i: number): number {
  while (
    i < text.length && (text.charCodeAt(i) === 0x20 || (text.charCodeAt(i) >= 0x09 && text.charCodeAt(i) <= 0x0d))
  ) {
    i++;
  }
  return i;
}

/** The index just past the string that starts at `i` (its opening quote). */
function stringEnd(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  return i;
}

/** The index just past the number, `true`, `false` or `null` that starts at `i`. */
function scalarEnd(text: string, i: number): number {
  while (i < text.length && !/[\s,}\]]/.test(text[i]!)) i++;
  return i;
}
