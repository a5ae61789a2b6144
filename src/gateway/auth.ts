/**
 * Built-in authentication for `auth(c)` (docs/protocol.md, Authentication): a bearer token in `Authorization`, the
 * same token in the `Sec-WebSocket-Protocol` list (browsers cannot set headers on a
 * WebSocket), or a short-lived single-use ticket in the query, minted by an HTTP route the
 * app already authenticates.
 */
import type { Context, Handler } from "hono";

import { TOKEN_PROTOCOL_PREFIX } from "../jsonrpc/protocol.ts";

export { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from "../jsonrpc/protocol.ts";

const encoder = new TextEncoder();

/**
 * Compares two strings in time that depends only on their lengths, not on where they
 * differ, so a token cannot be guessed a character at a time from response timings.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0, n = Math.max(x.length, y.length); i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** The subprotocols a request offers, in order. */
export function offeredProtocols(c: Context): string[] {
  const header = c.req.header("sec-websocket-protocol");
  return header ? header.split(",").map((p) => p.trim()).filter(Boolean) : [];
}

/**
 * Single-use tickets: `mint(principal)` returns a random ticket valid for `ttlMs`;
 * `redeem(ticket)` returns its principal once, then never again. Expired tickets are
 * dropped as new ones are minted, so the book stays as small as the tickets in flight.
 */
export class Tickets {
  /** How long a ticket stays valid after `mint`, in ms; `route()` answers it as `expires_in_ms`. */
  readonly ttlMs: number;
  #book = new Map<string, { principal: string; expires: number }>();

  /** An empty book of tickets valid for `ttlMs` each (default 30 s). */
  constructor({ ttlMs = 30_000 }: { ttlMs?: number } = {}) {
    this.ttlMs = ttlMs;
  }

  /** Tickets minted and not yet redeemed or expired. */
  get size(): number {
    return this.#book.size;
  }

  /** A new random ticket for `principal` (24 bytes, URL-safe base64), redeemable once within `ttlMs`. */
  mint(principal: string): string {
    const now = performance.now();
    // The Map iterates oldest first: stop at the first ticket still valid.
    for (const [ticket, entry] of this.#book) {
      if (entry.expires > now) break;
      this.#book.delete(ticket);
    }
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    const ticket = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
    this.#book.set(ticket, { principal, expires: now + this.ttlMs });
    return ticket;
  }

  /** The ticket's principal, or null if it is unknown, used or expired. */
  redeem(ticket: string): string | null {
    // A Map lookup by the ticket itself: its hash reveals nothing about near misses.
    const entry = this.#book.get(ticket);
    if (!entry) return null;
    this.#book.delete(ticket);
    return entry.expires > performance.now() ? entry.principal : null;
  }

  /**
   * A Hono handler for the route that mints tickets, behind the app's own authentication:
   * answers `{ticket, expires_in_ms}` for the principal `principalOf(c)` names, else 401.
   */
  route(principalOf: (c: Context) => string | null | Promise<string | null>): Handler {
    return async (c) => {
      const principal = await principalOf(c);
      if (principal === null) return c.json({ error: "unauthorized" }, 401);
      return c.json({ ticket: this.mint(principal), expires_in_ms: this.ttlMs });
    };
  }
}

/** Options of `tokenAuth`. */
export interface TokenAuthOptions {
  /** Accepted tokens and the principal each one names. */
  tokens?: Record<string, string>;
  /** Or a function from a token to its principal (null: refused); it must compare in constant time itself. */
  verify?: (token: string) => string | null | Promise<string | null>;
  /** Accept `?ticket=` from these tickets too. */
  tickets?: Tickets;
  /**
   * Accept the token as `?token=` on the upgrade URL too, for clients that can put it nowhere
   * else. Off by default: a URL ends up in proxy and server access logs, and so would the token.
   */
  queryToken?: boolean;
}

/**
 * An `auth(c)` for `createGateway` that accepts a bearer token in `Authorization`, in the
 * subprotocol list as `switchboard.token.<token>` (after `switchboard.v1`, which is what the
 * server answers: the token is never echoed), a ticket in the query, or (only with
 * `queryToken`) the token itself in the query.
 *
 * @example Tokens, and tickets minted for holders of a token
 * ```ts
 * import { Hono } from "hono";
 * import { createGateway, Tickets, tokenAuth } from "switchboard";
 * import { serve } from "switchboard/node";
 *
 * const tokens = { [process.env.API_TOKEN!]: "me" };
 * const tickets = new Tickets();
 * const app = new Hono();
 * app.post("/api/ticket", tickets.route(tokenAuth({ tokens })));
 * const gateway = createGateway({ auth: tokenAuth({ tokens, tickets }), methods: {} });
 * const server = await serve(gateway, { app });
 * ```
 */
export function tokenAuth(options: TokenAuthOptions): (c: Context) => Promise<string | null> {
  const entries = Object.entries(options.tokens ?? {});
  const verify = options.verify ??
    ((token: string) => {
      // Compare against every token, never stopping early.
      let principal: string | null = null;
      for (const [known, name] of entries) if (constantTimeEqual(token, known)) principal = name;
      return principal;
    });
  // deno-lint-ignore require-await -- async so that every path returns a promise and a throwing `verify` rejects
  return async (c) => {
    const header = c.req.header("authorization");
    if (header?.startsWith("Bearer ")) return verify(header.slice(7).trim());
    const offered = offeredProtocols(c).find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
    if (offered) return verify(offered.slice(TOKEN_PROTOCOL_PREFIX.length));
    const ticket = c.req.query("ticket");
    if (ticket && options.tickets) return options.tickets.redeem(ticket);
    const token = options.queryToken ? c.req.query("token") : undefined;
    if (token) return verify(token);
    return null;
  };
}
