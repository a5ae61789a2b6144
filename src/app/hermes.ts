/**
 * The agent gateway speaking hermes-agent's `tui_gateway` protocol (`--protocol hermes`), so
 * that hermes' own clients chat with the app's agent: the same conversations, turns and store
 * as `createAgentGateway`, behind hermes' method names, payloads, error codes and
 * `gateway.ready` fields. docs/hermes.md says what is supported and what is not.
 */
import { consoleLogger, createGateway, method } from "../mod.ts";
import { type AgentGatewayOptions, conversationSessions, stateLags } from "./conversations.ts";
import { hermesAsker } from "./hermes-asker.ts";
import { HERMES_ERROR_CODES } from "./hermes-errors.ts";
import { hermesPromptMethods } from "./hermes-prompts.ts";
import { hermesRequestMethods } from "./hermes-requests.ts";
import { hermesSessionMethods } from "./hermes-sessions.ts";
import { HermesTurns } from "./hermes-turns.ts";

/** What `gateway.ready` announces beyond Switchboard's own fields; `capabilities` as hermes lists them. */
const CAPABILITIES = {
  event_replay: true,
  change_events: false,
  turn_lease: false,
  turn_recovery: false,
  client_turn_id: false,
};

/**
 * Builds the gateway behind `npm start -- --protocol hermes`. Hermes' methods (`session.create`,
 * `prompt.submit`, `session.resume`…) replace the app's, and the built-in `session.resume` and
 * `session.events.since` make way for hermes' own; `gateway.ping` and `session.close` stay (their
 * answers suit hermes' clients). A connection gets server requests only once it announced them
 * with `client.capabilities`; until then it answers questions with the `*.respond` methods.
 */
export function createHermesGateway(options: AgentGatewayOptions) {
  const { agent, auth, logger } = options;
  const lagging = stateLags(options);
  const log = logger ?? consoleLogger("info");
  const turns = new HermesTurns({ agent, asker: hermesAsker(), lagging, log });
  return createGateway({
    name: "switchboard-hermes",
    auth,
    logger: log,
    builtins: { "session.resume": false, "session.events.since": false },
    errorCodes: HERMES_ERROR_CODES,
    capabilities: { serverRequests: false },
    ready: (connection, base) => ({
      // Hermes' clients theme from it; `{}` is what they get when hermes has no skin either.
      skin: {},
      replay_epoch: base.epoch,
      // Hermes' clients heartbeat only over a WebSocket.
      heartbeat: connection.peer !== "stdio",
      change_events: false,
      capabilities: CAPABILITIES,
    }),
    sessions: conversationSessions(options),
    methods: {
      // The cheapest probe: beside any call still waiting (e.g. on the store), not behind it.
      ping: method({ concurrent: true, handler: () => ({ pong: true }) }),
      // One turn at a time per session; no worker snapshots.
      "gateway.capabilities": () => ({ per_session_exclusive_submit: true, worker_snapshot_v1: false }),
      ...hermesSessionMethods(agent, turns),
      ...hermesPromptMethods(turns),
      ...hermesRequestMethods(),
    },
  });
}
