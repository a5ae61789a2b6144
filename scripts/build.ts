/**
 * `npm run build` (also run by `npm pack` and `npm publish`): compiles src/ into dist/ with the
 * project's TypeScript compiler (ESM JavaScript, declarations, source maps), then puts the
 * reference app's page beside its compiled entry, with the page script bundled.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { bundlePageScript } from "../src/app/page-script.ts";

rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
mkdirSync("dist/app/page", { recursive: true });
for (const file of ["index.html", "style.css"]) copyFileSync(`src/app/page/${file}`, `dist/app/page/${file}`);
writeFileSync("dist/app/page/app.js", await bundlePageScript("src/app/page/app.js"));
chmodSync("dist/app/main.js", 0o755);
