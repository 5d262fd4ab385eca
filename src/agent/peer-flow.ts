import type { Endpoint } from '../core/address.js';
import type { DatagramChannel, DatagramReceiver } from '../upstream/dialer.js';
import type { PeerTarget } from '../upstream/peer/peer-dialer.js';
import type { PeerLink } from './peer-link.js';

/** Datagrams a flow holds while it has no path yet (control channel down, or `path: direct` before ICE). */
export const FLOW_QUEUE_MAX = 256;

/**
 * One UDP session of a `connect` listener toward the peer's service (docs/connect.md).
 *
 * Relay: `tag` (top bit set, chosen here) names the flow between this agent and the gateway.
 * pending: PEER_OPEN not sent yet (no control channel); datagrams queue.
 * sent: PEER_OPEN sent; datagrams go as DATAGRAM frames on the control channel, behind it in order.
 * ok: PEER_OPEN_OK came; sealed UDP (or frames, when UDP to the gateway is blocked).
 * Direct: once the gateway told us the peer's connectee tag (`peerTag`), datagrams go over the
 * link's direct path whenever it is usable, else over the relay; the peer's local session is the same.
 */
export class PeerFlow implements DatagramChannel {
  tag = 0;
  peerTag = 0;
  state: 'pending' | 'sent' | 'ok' | 'closed' = 'pending';
  readonly queue: Buffer[] = [];
  /** `duplicated`: sent on both paths while the direct one was in doubt (also counted in both). */
  readonly counters = { direct: 0, relayed: 0, duplicated: 0, received: 0, queuedDropped: 0 };

  constructor(
    private readonly owner: { send(flow: PeerFlow, payload: Buffer): void; close(flow: PeerFlow): void },
    readonly link: PeerLink,
    readonly target: PeerTarget,
    readonly receiver: DatagramReceiver,
    readonly remote: Endpoint,
  ) {}

  send(buf: Buffer, prefix: Buffer | null): void {
    this.owner.send(this, prefix === null ? buf : Buffer.concat([prefix, buf]));
  }

  /** Holds a copy (the caller may reuse `payload`); drops when full. */
  hold(payload: Buffer): void {
    if (this.queue.length >= FLOW_QUEUE_MAX) {
      this.counters.queuedDropped++;
      return;
    }
    this.queue.push(Buffer.from(payload));
  }

  close(): void {
    this.owner.close(this);
  }
}
