import { moveState, type TransitionTable } from '../core/state-machine.js';

/**
 * The agent's connection to one of its gateways (GatewayHome; Agent shows the best of them), as `sluice status`, /api/agent and the views show it:
 * - `connecting`: an attempt (resolve, TLS, authentication) is under way; the first state.
 * - `connected`: authenticated; services published, datagrams and peers ride this connection.
 * - `waiting`: the attempt failed or the connection ended; the next attempt starts after the
 *   backoff delay (or at once on `reconnectNow`).
 * - `standby`: a gateway of `agent.gateways` past `agent.homes`: no attempt until a held one is
 *   lost (docs/fleet.md, "Agents on a fleet"); never with one gateway.
 * - `closed`: final, after `close()`.
 */
export type AgentState = 'connecting' | 'connected' | 'waiting' | 'standby' | 'closed';

export const AGENT_MOVES: TransitionTable<AgentState> = {
  connecting: ['connected', 'waiting', 'standby', 'closed'],
  connected: ['waiting', 'closed'],
  waiting: ['connecting', 'standby', 'closed'],
  standby: ['connecting', 'closed'],
  closed: [],
};

/** Throws SLUICE_ERR_STATE for a move AGENT_MOVES does not allow. */
export function nextAgentState(from: AgentState, to: AgentState): AgentState {
  return moveState(AGENT_MOVES, 'agent', from, to);
}
