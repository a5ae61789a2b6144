/**
 * The code blocks of README.md and docs/*.md, as the docs test sees them.
 *
 * A ```ts block is a whole module (imports included). Words after `ts` in its fence say how
 * it is tried (GitHub shows only the language):
 * - the runtime: `deno` or `bun`; none means Node;
 * - `server`: it serves until stopped and prints its gateway's `ws://` URL, which the test
 *   connects to; `check`: type-checked only (code for a browser page); neither: it must run
 *   to its end and exit 0.
 * A ```sh block holds commands, one a line (`#` starts a comment). ```json and ```text blocks
 * are shown as they are. Any other language fails the test, so nothing goes unchecked.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** One fenced block. */
export interface Block {
  /** Where it is: `README.md:12` (the line of its opening fence). */
  where: string;
  language: string;
  /** The words after the language. */
  words: string[];
  code: string;
}

/** How a TypeScript block is tried. */
export interface TsBlock extends Block {
  runtime: "node" | "deno" | "bun";
  mode: "run" | "server" | "check";
  /** A file name for it, unique across the docs. */
  file: string;
}

/** README.md and every Markdown file in docs/, relative to `root`. */
export function markdownFiles(root: string): string[] {
  const docs = readdirSync(join(root, "docs")).filter((name) => name.endsWith(".md")).sort();
  return ["README.md", ...docs.map((name) => join("docs", name))];
}

/** Every fenced block of `file` (relative to `root`). */
export function blocksOf(root: string, file: string): Block[] {
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S+)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!);
    blocks.push({
      where: `${file}:${start + 1}`,
      language: open[1]!,
      words: open[2]!.trim().split(/\s+/).filter(Boolean),
      code: `${body.join("\n")}\n`,
    });
  }
  return blocks;
}

/** A ts block with its runtime, mode and file name. */
export function tsBlock(block: Block): TsBlock {
  const runtime = block.words.includes("deno") ? "deno" : block.words.includes("bun") ? "bun" : "node";
  const mode = block.words.includes("server") ? "server" : block.words.includes("check") ? "check" : "run";
  const file = `${block.where.replace(/[^\w]+/g, "_")}.ts`;
  return { ...block, runtime, mode, file };
}

/** The commands of a sh block: one per line, comments and blank lines dropped. */
export function commandsOf(block: Block): string[] {
  return block.code
    .split("\n")
    .map((line) => line.replace(/(^|\s)#.*$/, "").trim())
    .filter(Boolean);
}
