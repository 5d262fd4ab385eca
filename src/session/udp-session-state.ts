import { canMove, moveState, type TransitionTable } from '../core/state-machine.js';

/**
 * The life of one UDP session. `opening`: admitted, its upstream channel not yet open (client
 * datagrams queue, bounded by `setupQueue`); `open`: the channel carries datagrams both ways and
 * the session was reported started; `closed`: ended, its admission released (final). A session
 * that fails to open, or is ended while opening, goes straight to `closed` and was never started.
 */
export type UdpSessionState = 'opening' | 'open' | 'closed';

export const UDP_SESSION_MOVES: TransitionTable<UdpSessionState> = {
  opening: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

/** Throws SLUICE_ERR_STATE for a move UDP_SESSION_MOVES does not allow. */
export function nextUdpSessionState(from: UdpSessionState, to: UdpSessionState): UdpSessionState {
  return moveState(UDP_SESSION_MOVES, 'UDP session', from, to);
}

export function canMoveUdpSession(from: UdpSessionState, to: UdpSessionState): boolean {
  return canMove(UDP_SESSION_MOVES, from, to);
}
