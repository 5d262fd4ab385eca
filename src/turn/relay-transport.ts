import type { Endpoint } from '../core/address.js';
import type { StunPeer } from './stun-transaction.js';

/**
 * The seam between the ICE agent and whatever relays its datagrams when no direct path works:
 * a TURN allocation (turn/turn-client.ts) or, later, the gateway's own relay. The ICE agent turns
 * an allocation into a relayed candidate and runs its checks and its data through `send`.
 */

export interface RelayAllocation {
  /** The address peers send to; it becomes the relayed candidate (RFC 8445 §5.1.1.2). */
  readonly relayed: Endpoint;
  /** This side's server-reflexive address as the relay saw it, when the relay reports it (TURN does). */
  readonly mapped?: Endpoint;
}

/** Gets what arrives at the relayed address. Must not throw. */
export interface RelayReceiver {
  /** One datagram a peer sent to the relayed address; `from` is the peer as the relay saw it. */
  onRelayDatagram(buf: Buffer, from: Endpoint): void;
  /** The allocation is gone (refresh failed, server lost, closed); no more datagrams will come. */
  onRelayClosed(err: Error | undefined): void;
}

export interface RelayTransport {
  /**
   * Obtains the relayed address. Idempotent: later calls resolve with the same allocation.
   * Rejects with a SluiceError (SLUICE_ERR_TURN, SLUICE_ERR_STUN_TIMEOUT, SLUICE_ERR_CLOSED) or
   * with `signal.reason`.
   */
  allocate(signal?: AbortSignal): Promise<RelayAllocation>;
  /**
   * Sends one datagram to `peer` from the relayed address. Never throws. Whatever the relay needs
   * first (a TURN permission, a channel) is the implementation's business; datagrams it cannot
   * carry yet may be queued briefly or dropped, as UDP may drop them anyway.
   */
  send(buf: Buffer, peer: StunPeer): void;
  /** Sets the one receiver; a later call replaces it. */
  setReceiver(receiver: RelayReceiver): void;
  /** Releases the allocation. Idempotent; resolves when done (or given up). */
  close(): Promise<void>;
}
