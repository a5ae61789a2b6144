/**
 * What every floor does with a frame, written once so the floors differ only in their runtime's
 * socket API: JSON.parse, the call, JSON.stringify. For the session workloads a session is a
 * plain room (its sockets and a seq counter) and each event is stringified once and sent to
 * every member — what a hand-written broadcast does, with no replay ring and no backlog checks.
 */
import { payload } from "../wire.ts";

interface Room<S> {
  members: Set<S>;
  seq: number;
}

/** The floor's calls over sockets of type `S`, given how to send a text frame on one. */
export function floorCalls<S>(send: (socket: S, text: string) => void) {
  const rooms = new Map<string, Room<S>>();
  const reply = (socket: S, id: unknown, result: unknown) =>
    send(socket, JSON.stringify({ jsonrpc: "2.0", id, result }));
  return {
    message(socket: S, text: string): void {
      const m = JSON.parse(text);
      switch (m.method) {
        case "add":
          return reply(socket, m.id, m.params[0] + m.params[1]);
        case "stream":
          for (let i = 0; i < m.params.count; i++) {
            send(
              socket,
              JSON.stringify({
                jsonrpc: "2.0",
                method: "event",
                params: { type: "message.delta", payload: payload(i) },
              }),
            );
          }
          return reply(socket, m.id, m.params.count);
        case "session.create": {
          // As long as Switchboard's (128 random bits in hex), so both put the same bytes on the wire.
          const sessionId = crypto.randomUUID().replaceAll("-", "");
          rooms.set(sessionId, { members: new Set([socket]), seq: 0 });
          return reply(socket, m.id, { session_id: sessionId });
        }
        case "session.resume": {
          const room = rooms.get(m.params.session_id)!;
          room.members.add(socket);
          return reply(socket, m.id, {
            session_id: m.params.session_id,
            latest_seq: room.seq,
            replayed: 0,
            truncated: false,
          });
        }
        case "broadcast": {
          const room = rooms.get(m.params.session_id)!;
          for (let i = 0; i < m.params.count; i++) {
            const frame = JSON.stringify({
              jsonrpc: "2.0",
              method: "event",
              params: { session_id: m.params.session_id, seq: ++room.seq, type: "message.delta", payload: payload(i) },
            });
            for (const member of room.members) send(member, frame);
          }
          return reply(socket, m.id, m.params.count);
        }
      }
    },
    /** Forgets a closed socket. */
    close(socket: S): void {
      for (const room of rooms.values()) room.members.delete(socket);
    },
  };
}
