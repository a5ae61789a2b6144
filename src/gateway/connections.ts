/**
 * A gateway's open connections and what is counted per connection: per principal (the guard's
 * cap with `auth`) and per client address (attempt rate and open connections). Closing them
 * all, for `gateway.close()`, waits for their teardown without polling.
 */
import { CloseCode } from "../transport/transport.ts";
import { AddressLimits, addressOf, isLoopback } from "./address-limits.ts";
import type { Connection } from "./connection.ts";
import type { Limits } from "./gateway.ts";
import { atMost, Count } from "./waits.ts";

/** The open connections of one gateway. */
export class ConnectionRegistry {
  readonly #open = new Set<Connection>();
  readonly #perPrincipal = new Map<string, number>();
  readonly #perAddress: AddressLimits;
  readonly #count = new Count();
  readonly #limitLoopback: boolean;

  /** Counts per address with `limits`; loopback peers too only with `limitLoopback`. */
  constructor(limits: Readonly<Limits>, limitLoopback: boolean) {
    this.#perAddress = new AddressLimits(limits.connectsPerSecondPerAddress, limits.maxConnectionsPerAddress);
    this.#limitLoopback = limitLoopback;
  }

  /** The open connections. */
  get open(): ReadonlySet<Connection> {
    return this.#open;
  }

  /** Open connections of `principal`. */
  of(principal: string): number {
    return this.#perPrincipal.get(principal) ?? 0;
  }

  /** Counts a connection attempt from `address`; the HTTP status refusing it (429, 503), or undefined. */
  admitAddress(address: string): 429 | 503 | undefined {
    if (!this.#limitLoopback && isLoopback(address)) return undefined;
    return this.#perAddress.admit(address, performance.now());
  }

  /** A connection opened. */
  add(connection: Connection): void {
    this.#open.add(connection);
    this.#perPrincipal.set(connection.principal, this.of(connection.principal) + 1);
    this.#perAddress.opened(addressOf(connection.peer));
    this.#count.up();
  }

  /** A connection tore down (once; a second call does nothing). */
  release(connection: Connection): void {
    if (!this.#open.delete(connection)) return;
    const left = this.of(connection.principal) - 1;
    if (left === 0) this.#perPrincipal.delete(connection.principal);
    else this.#perPrincipal.set(connection.principal, left);
    this.#perAddress.closed(addressOf(connection.peer));
    this.#count.down();
  }

  /**
   * Closes every connection with 1001 and waits for their teardown, at most `timeoutMs`; those
   * whose peers never finished the close handshake are torn down then (the runtime drops their sockets).
   */
  async closeAll(timeoutMs: number): Promise<void> {
    for (const connection of this.#open) connection.close(CloseCode.GoingAway, "shutdown");
    await atMost(this.#count.zero(), timeoutMs);
    for (const connection of this.#open) connection.teardown("shutdown");
  }
}
