/**
 * The Hono app that serves the web chat beside the gateway: the page, its script and style
 * (held in memory), and `/healthz`. `serve()` adds the gateway route (`/api/ws`) to it.
 */
import { Hono } from "hono";

/** The page's files, ready to serve. */
export interface PageAssets {
  html: string;
  /** The page script, bundled with `switchboard/client`. */
  js: string;
  css: string;
}

// The page loads nothing from elsewhere and talks only to its own origin.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** A Hono app serving `/`, `/app.js`, `/style.css` and `/healthz`. */
export function siteApp(assets: PageAssets): Hono {
  const app = new Hono();
  const file = (body: string, type: string) => () =>
    new Response(body, {
      headers: { "content-type": type, "cache-control": "no-cache", "x-content-type-options": "nosniff" },
    });
  app.get("/", (c) => {
    c.header("content-security-policy", CSP);
    c.header("referrer-policy", "no-referrer");
    return c.html(assets.html);
  });
  app.get("/app.js", file(assets.js, "text/javascript; charset=utf-8"));
  app.get("/style.css", file(assets.css, "text/css; charset=utf-8"));
  app.get("/healthz", (c) => c.json({ ok: true }));
  return app;
}
