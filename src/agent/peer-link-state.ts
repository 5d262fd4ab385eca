import { moveState, type TransitionTable } from '../core/state-machine.js';

/**
 * The state of the path to one other agent (PeerLink), as views, metrics and `peer-path` events
 * show it:
 * - `idle`: no flow asked for the peer lately; no ICE attempt, no timers.
 * - `connecting`: a flow (or the peer's offer) woke the link; neither the relay nor ICE carries
 *   anything yet.
 * - `connected`: the relay carries flows, or ICE selected a pair (`PeerLink.path` says which). A
 *   new ICE outcome while connected (a pair selected again, or an attempt failed back to the
 *   relay) stays connected.
 * Any active state goes back to `idle` when the link idles out or the peer closes the attempt.
 */
export type PeerState = 'idle' | 'connecting' | 'connected';

export const PEER_LINK_MOVES: TransitionTable<PeerState> = {
  idle: ['connecting'],
  connecting: ['connected', 'idle'],
  connected: ['connected', 'idle'],
};

/** Throws SLUICE_ERR_STATE for a move PEER_LINK_MOVES does not allow. */
export function nextPeerState(from: PeerState, to: PeerState): PeerState {
  return moveState(PEER_LINK_MOVES, 'peer link', from, to);
}
