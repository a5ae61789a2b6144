/** What every benchmark server and the load client agree on, so one client drives them all. */

/** The first frame of every server; Switchboard's `gateway.ready` has the same envelope. */
export const READY = JSON.stringify({
  jsonrpc: "2.0",
  method: "event",
  params: { type: "gateway.ready", payload: { protocol: "switchboard/1" } },
});

const TEXT = "the quick brown fox jumps over the dog";

/** One streamed event's payload: about 60 bytes of JSON (about 135 with the event envelope). */
export function payload(i: number): { i: number; text: string } {
  return { i, text: TEXT };
}

/** Every streamed event starts with this, the index following: the client checks order by it. */
export const EVENT_PREFIX = '{"jsonrpc":"2.0","method":"event","params":{"type":"message.delta","payload":{"i":';

export const addRequest = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"add","params":[${id},1]}`;
export const streamRequest = (count: number) =>
  `{"jsonrpc":"2.0","id":1,"method":"stream","params":{"count":${count}}}`;

/** A session event's seq follows this key; replies have none (`latest_seq` does not match: no quote before `seq`). */
export const SEQ_KEY = '"seq":';
export const createRequest = `{"jsonrpc":"2.0","id":1,"method":"session.create","params":{}}`;
export const joinRequest = (sessionId: string) =>
  `{"jsonrpc":"2.0","id":1,"method":"session.resume","params":{"session_id":"${sessionId}"}}`;
export const broadcastRequest = (sessionId: string, count: number) =>
  `{"jsonrpc":"2.0","id":2,"method":"broadcast","params":{"session_id":"${sessionId}","count":${count}}}`;
