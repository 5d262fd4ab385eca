import { SluiceError } from '../core/errors.js';

/**
 * The life of one UDP session. `opening`: admitted, its upstream channel not yet open (client
 * datagrams queue, bounded by `setupQueue`); `open`: the channel carries datagrams both ways and
 * the session was reported started; `closed`: ended, its admission released (final). A session
 * that fails to open, or is ended while opening, goes straight to `closed` and was never started.
 */
export type UdpSessionState = 'opening' | 'open' | 'closed';

const NEXT: Readonly<Record<UdpSessionState, readonly UdpSessionState[]>> = {
  opening: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

/** Throws SLUICE_ERR_SESSION_STATE for a move the table does not allow. */
export function nextUdpSessionState(from: UdpSessionState, to: UdpSessionState): UdpSessionState {
  if (!NEXT[from].includes(to)) throw new SluiceError('SLUICE_ERR_SESSION_STATE', `UDP session: ${from} → ${to}`);
  return to;
}

export function canMoveUdpSession(from: UdpSessionState, to: UdpSessionState): boolean {
  return NEXT[from].includes(to);
}
