// `npm run screenshot`: the README's picture of the web chat (docs/screenshot.png). Starts the
// app as `npm start` would, has Debian's chromium ask the demo agent about files and allow
// its tool, and takes the picture once the answer is complete.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { startApp } from "../test/helpers/app.ts";

const app = await startApp(["--delay-ms", "5"]);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 960, height: 780 }, colorScheme: "light" });
  await page.goto(app.url);
  const ask = async (text: string) => {
    await page.getByLabel("Message").fill(text);
    await page.getByLabel("Message").press("Enter");
  };
  await ask("Hello! What can you do?");
  await page.locator(".turn:last-of-type[data-status=complete]").waitFor({ timeout: 15_000 });
  await page.getByRole("button", { name: "New chat" }).click();
  await ask("Which files does this project have?");
  await page.getByRole("button", { name: "Allow" }).click({ timeout: 15_000 });
  await page.locator(".turn:last-of-type[data-status=complete]").waitFor({ timeout: 15_000 });
  mkdirSync("docs", { recursive: true });
  await page.screenshot({ path: "docs/screenshot.png" });
  console.log("wrote docs/screenshot.png");
} finally {
  await browser.close();
  await app.close();
}
