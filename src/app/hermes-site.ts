/**
 * The Hono app beside the gateway in hermes mode: no web chat (the page speaks Switchboard's
 * own protocol), only `/healthz`, the ticket route for `?ticket=`, and a note at `/` on where a
 * hermes client connects.
 */
import { type Handler, Hono } from "hono";

/** A Hono app serving `/` (a plain-text note), `/healthz` and `POST /api/ticket` with `ticketRoute`. */
export function hermesSite(ticketRoute: Handler): Hono {
  const app = new Hono();
  app.get("/", (c) =>
    c.text(
      "This Switchboard app speaks hermes-agent's gateway protocol: point a hermes client at /api/ws?token=<token> " +
        "(the URL the app printed). The web chat needs the app started without --protocol hermes.\n",
    ));
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.post("/api/ticket", ticketRoute);
  return app;
}
