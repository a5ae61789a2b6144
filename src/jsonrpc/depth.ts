/**
 * Nesting depth of parsed JSON, measured without recursion, so a hostile 100,000-deep array
 * is refused before anything recursive (a schema, `JSON.stringify`) can overflow the stack.
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
