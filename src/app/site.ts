/**
 * The Hono app that serves the web chat beside the gateway: the page, its script and style
 * (held in memory), the route where the page trades its token for a ticket, and `/healthz`.
 * `serve()` adds the gateway route (`/api/ws`) to it.
 */
import { type Handler, Hono } from "hono";

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

/**
 * A Hono app serving `/`, `/app.js`, `/style.css`, `/healthz` and `POST /api/ticket` with
 * `ticketRoute` (e.g. `Tickets.route`): before each connection the page asks it for a ticket
 * with its token, and so learns from a 401 that the token is refused, which a failed
 * WebSocket upgrade cannot tell a page.
 */
export function siteApp(assets: PageAssets, ticketRoute: Handler): Hono {
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
  app.post("/api/ticket", ticketRoute);
  return app;
}
