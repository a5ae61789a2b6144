/**
 * Bundles the web chat's script (`page/app.js`) with the client, for the browser: at start
 * when the app runs from source, at build time for the package (which ships no bundler).
 */

/** The bundled script's text; esbuild is loaded only when this is called. */
export async function bundlePageScript(entry: string): Promise<string> {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}
