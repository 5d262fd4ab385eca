import { moveState, type TransitionTable } from '../core/state-machine.js';

/**
 * The state of an authenticated agent on the gateway (AgentLink):
 * - `detached`: no control connection. A new link starts here until its first connection is
 *   attached; a link whose connection was lost stays here for `resumeGraceMs`, keeping its
 *   services and UDP connectees, so the agent can resume.
 * - `attached`: a control connection is up. Attaching again (a newer connection of the same agent
 *   authenticated, resumed or not) stays attached.
 * - `closed`: final; listeners closed, keys forgotten, the registry dropped it.
 */
export type AgentLinkState = 'attached' | 'detached' | 'closed';

export const AGENT_LINK_MOVES: TransitionTable<AgentLinkState> = {
  detached: ['attached', 'closed'],
  attached: ['attached', 'detached', 'closed'],
  closed: [],
};

/** Throws SLUICE_ERR_STATE for a move AGENT_LINK_MOVES does not allow. */
export function nextAgentLinkState(from: AgentLinkState, to: AgentLinkState): AgentLinkState {
  return moveState(AGENT_LINK_MOVES, 'agent link', from, to);
}
