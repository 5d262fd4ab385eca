import { SluiceError } from '../core/errors.js';

/**
 * The agent's state as the application sees it. `checking` starts once the remote credentials
 * are known; `connected` means a pair is selected (nominated) and consent is fresh;
 * `disconnected` means consent is stale (no answer for ~10 s) but not yet expired; `failed`
 * means no pair worked, or consent expired (RFC 7675: 30 s). A restart (new credentials) goes
 * back to `checking` from anywhere but `closed`.
 */
export type IceAgentState = 'idle' | 'checking' | 'connected' | 'disconnected' | 'failed' | 'closed';

const NEXT: Readonly<Record<IceAgentState, readonly IceAgentState[]>> = {
  idle: ['checking', 'closed'],
  checking: ['connected', 'failed', 'closed'],
  connected: ['disconnected', 'failed', 'checking', 'closed'],
  disconnected: ['connected', 'failed', 'checking', 'closed'],
  failed: ['checking', 'closed'],
  closed: [],
};

/** Throws SLUICE_ERR_ICE_STATE for a move the table does not allow. */
export function nextAgentState(from: IceAgentState, to: IceAgentState): IceAgentState {
  if (!NEXT[from].includes(to)) throw new SluiceError('SLUICE_ERR_ICE_STATE', `ICE agent: ${from} → ${to}`);
  return to;
}

export function canMove(from: IceAgentState, to: IceAgentState): boolean {
  return NEXT[from].includes(to);
}
