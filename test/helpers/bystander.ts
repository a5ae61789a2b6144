/**
 * A well-behaved client beside an attack: it connects before the attack starts and, after,
 * must still be open and get exact answers. The gateway must have an `echo` method.
 */
import assert from "node:assert/strict";
import { TestClient } from "./client.ts";

export class Bystander {
  readonly client: TestClient;
  #calls = 0;

  private constructor(client: TestClient) {
    this.client = client;
  }

  /** Connects (offering `protocols`, e.g. a token) and takes `gateway.ready`. */
  static async join(wsUrl: string, protocols?: string[]): Promise<Bystander> {
    const client = await TestClient.open(wsUrl, protocols);
    assert.equal((await client.next()).params?.type, "gateway.ready");
    return new Bystander(client);
  }

  /** Asserts that the bystander is still open, answers an `echo` exactly, and got nothing else. */
  async check(what = "the bystander"): Promise<void> {
    assert.equal(this.client.socket.readyState, 1, `${what} is still open`);
    const value = { still: "here", n: ++this.#calls };
    assert.deepEqual((await this.client.call("echo", value)).result, value, what);
    assert.deepEqual(this.client.inbox, [], `${what} got nothing it did not ask for`);
  }

  /** Checks once more, then closes normally. */
  async leave(): Promise<void> {
    await this.check();
    assert.equal((await this.client.close()).code, 1000);
  }
}
