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
