import type { Offer, ServiceTransport } from '../protocol/tunnel/index.js';

/** One OFFER of an agent: the agents in `peers` may reach its service `name` (docs/tunnel-protocol.md §8). */
export interface PeerOffer {
  readonly serviceId: number;
  readonly name: string;
  readonly transport: ServiceTransport;
  readonly peers: ReadonlySet<string>;
  /** True after a resume until the agent offers it again; stale offers are dropped with stale services. */
  stale: boolean;
}

/**
 * The offers of one agent, by service id. A later OFFER of the same id replaces the earlier one;
 * an OFFER naming no peer withdraws it. Offers live as long as the agent's link: a new
 * (non-resumed) connection starts with none, a resumed one keeps them until the agent re-sends.
 */
export class OfferTable {
  readonly #byId = new Map<number, PeerOffer>();

  get size(): number {
    return this.#byId.size;
  }

  values(): IterableIterator<PeerOffer> {
    return this.#byId.values();
  }

  /** Stores `m`; returns the offer it replaced, if any. */
  set(m: Offer): PeerOffer | undefined {
    const old = this.#byId.get(m.serviceId);
    if (m.peers.length === 0) this.#byId.delete(m.serviceId);
    else this.#byId.set(m.serviceId, { serviceId: m.serviceId, name: m.name, transport: m.transport, peers: new Set(m.peers), stale: false });
    return old;
  }

  withdraw(serviceId: number): PeerOffer | undefined {
    const old = this.#byId.get(serviceId);
    this.#byId.delete(serviceId);
    return old;
  }

  markStale(): void {
    for (const o of this.#byId.values()) o.stale = true;
  }

  /** Removes and returns the offers still stale. */
  dropStale(): PeerOffer[] {
    const stale = [...this.#byId.values()].filter((o) => o.stale);
    for (const o of stale) this.#byId.delete(o.serviceId);
    return stale;
  }

  /** The offer `peer` may open as `name` over `transport`, if any. */
  find(name: string, transport: ServiceTransport, peer: string): PeerOffer | undefined {
    for (const o of this.#byId.values()) if (o.name === name && o.transport === transport && o.peers.has(peer)) return o;
    return undefined;
  }

  /** True when `serviceId` is still offered to `peer` over `transport` (flows opened on it may stay). */
  grants(serviceId: number, transport: ServiceTransport, peer: string): boolean {
    const o = this.#byId.get(serviceId);
    return o !== undefined && o.transport === transport && o.peers.has(peer);
  }

  /** True when some offer names `peer`. */
  names(peer: string): boolean {
    for (const o of this.#byId.values()) if (o.peers.has(peer)) return true;
    return false;
  }
}

/**
 * The one rule for SIGNAL: agents `x` and `y` may talk when either offers the other a service.
 * PEER_OPEN is stricter: the opener must be named by the offer of the very service it opens.
 */
export function allowed(x: { readonly name: string; readonly offers: OfferTable }, y: { readonly name: string; readonly offers: OfferTable }): boolean {
  return y.offers.names(x.name) || x.offers.names(y.name);
}
