import type { Endpoint } from '../core/address.js';
import type { DatagramChannel, DatagramReceiver } from '../upstream/dialer.js';
import type { PeerTarget } from '../upstream/peer/peer-dialer.js';
import type { PeerLink } from './peer-link.js';
import { OffloadGroup, type SessionBudget, type TunnelEnd } from '../datapath/offload.js';
import { PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { DropReason } from '../observe/events.js';
import { FairSlot, slotDrops, type SendBudget } from '../upstream/agent/send-budget.js';

/** The agent's relay to a peer: its datagram path to the gateway, as flows use it. */
export interface RelayPath {
  send(tag: number, payload: Buffer): void;
  /** As a DATAGRAM frame on the control channel, in order behind control messages; false when down. */
  sendOverChannel(tag: number, payload: Buffer): boolean;
  /** The relay's tunnel side of `tag` for the native batch (sealed UDP to the gateway), under `budget`, or null. */
  offloadEnd?(tag: number, budget: SessionBudget): TunnelEnd | null;
}

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
 * Budget: every datagram toward the peer, by either path, is admitted first under the link's send
 * budget (`budget`, one per peer link, shared fairly among its flows: docs/connect.md, "A flood
 * through a connect listener"), before it is copied or sealed; in the native batch the same budget's
 * pool decides, and a client's own socket is then left unread while its flow may send no more.
 */
export class PeerFlow implements DatagramChannel {
  tag = 0;
  peerTag = 0;
  state: 'pending' | 'sent' | 'ok' | 'closed' = 'pending';
  readonly queue: Buffer[] = [];
  /** `duplicated`: sent on both paths while the direct one was in doubt (also counted in both). */
  readonly counters = { direct: 0, relayed: 0, duplicated: 0, received: 0, queuedDropped: 0 };
  /** This flow's session forwarded in the native batch: closed when its tags, its state or its link's path change. */
  readonly offloads = new OffloadGroup();
  /** This flow's place in the link's send budget (its drops by reason go to the session's record). */
  readonly fair = new FairSlot();
  /** The connect route's name, where the budget's drops are reported. */
  readonly #route: string;

  constructor(
    private readonly relay: RelayPath,
    private readonly onClose: (flow: PeerFlow) => void,
    readonly link: PeerLink,
    readonly target: PeerTarget,
    readonly receiver: DatagramReceiver,
    readonly remote: Endpoint,
    private readonly budget: SendBudget,
  ) {
    this.#route = `connect/${target.name}`;
  }

  /**
   * Direct when the link's direct path takes it (and the relay too while that path is in doubt),
   * else the relay; held, in order, while neither can take it.
   */
  send(buf: Buffer, prefix: Buffer | null): void {
    if (this.state === 'closed') return;
    if (this.link.state === 'idle') this.link.connect();
    else this.link.touch();
    // Before copying or sealing: a flooding client loses its own excess here, not at the peer after the trip.
    if (!this.budget.admit(this.fair, this.#route)) return;
    const payload = prefix === null ? buf : Buffer.concat([prefix, buf]);
    if (this.#direct(payload)) {
      // In doubt: a copy by the relay too, if it can take one now (never held: it went direct).
      if (this.link.directInDoubt && this.target.path !== 'direct' && this.#relay(payload)) this.counters.duplicated++;
      return;
    }
    if (this.target.path === 'direct' || this.queue.length > 0 || !this.#relay(payload)) this.#hold(payload);
  }

  /** Sends what the flow held, in order, on whichever path takes it now. */
  flush(): void {
    while (this.queue.length > 0 && this.state !== 'closed') {
      const p = this.queue[0]!;
      if (!this.#direct(p) && (this.target.path === 'direct' || !this.#relay(p))) return;
      this.queue.shift();
    }
  }

  /** A datagram of the peer's service, by either path. */
  deliver(payload: Buffer): void {
    this.counters.received++;
    this.link.touch();
    this.receiver.onUpstreamDatagram(payload);
  }

  close(): void {
    this.onClose(this);
  }

  /** What the link's send budget dropped of this flow, by reason (the session's record). */
  drops(): Partial<Record<DropReason, number>> | undefined {
    return slotDrops(this.fair);
  }

  /** This flow's send budget as the batch takes it (its pool refills the seal entry's credit). */
  #sessionBudget(): SessionBudget {
    const { budget, fair } = this;
    const route = this.#route;
    return {
      grant: (want) => budget.take(fair, want),
      pools: budget.pools,
      charge: (n) => budget.charge(fair, n),
      bank: () => fair.bank,
      dropped: (b, sh, st) => budget.countDrops(fair, b, sh, route, st),
    };
  }

  /**
   * The flow's tunnel side for the native batch (datapath/offload.ts; the connect session's client
   * is the plain side): the link's direct path while it is usable and not in doubt, else the
   * relay's sealed UDP once PEER_OPEN_OK came and while the flow does not go direct. Never while
   * datagrams are held. Credit comes from the link's send budget, as JavaScript's own sends.
   */
  offloadEnd(): TunnelEnd | null {
    if (this.state !== 'ok' || this.queue.length > 0) return null;
    const { tag, peerTag, link } = this;
    const count = (to: number, from: number, direct: boolean) => {
      if (direct) this.counters.direct += to;
      else this.counters.relayed += to;
      this.counters.received += from;
      if (to + from > 0) link.touch();
    };
    if (this.target.path !== 'relay' && peerTag !== 0 && link.directUsable) {
      return link.offloadEnd({
        tag: peerTag,
        tagIn: (peerTag | PEER_TAG_BIT) >>> 0,
        ...this.#sessionBudget(),
        forwarded: (to, from) => count(to, from, true),
        valid: () => this.state === 'ok' && this.peerTag === peerTag,
        groups: [this.offloads],
      });
    }
    // The relay: pinned to it, or (auto) while no direct path is usable.
    const relayOnly = () => this.target.path === 'relay' || !link.directUsable;
    if (this.target.path === 'direct' || !relayOnly()) return null;
    const r = this.relay.offloadEnd?.(tag, this.#sessionBudget());
    if (!r) return null;
    return {
      ...r,
      forwarded: (to, from) => {
        r.forwarded(to, from);
        count(to, from, false);
      },
      valid: () => r.valid() && this.state === 'ok' && this.tag === tag && relayOnly(),
      groups: [...(r.groups ?? []), this.offloads],
    };
  }

  #direct(payload: Buffer): boolean {
    if (this.target.path === 'relay' || this.peerTag === 0 || !this.link.sendDirect(this.peerTag, payload)) return false;
    this.counters.direct++;
    return true;
  }

  /** False when the relay cannot take it now (no PEER_OPEN sent yet, control channel down or full). */
  #relay(payload: Buffer): boolean {
    if (this.state === 'ok') this.relay.send(this.tag, payload);
    else if (this.state !== 'sent' || !this.relay.sendOverChannel(this.tag, payload)) return false;
    this.counters.relayed++;
    return true;
  }

  /** Holds a copy (the caller may reuse `payload`); drops when full. */
  #hold(payload: Buffer): void {
    if (this.queue.length >= FLOW_QUEUE_MAX) {
      this.counters.queuedDropped++;
      return;
    }
    this.queue.push(Buffer.from(payload));
  }
}
