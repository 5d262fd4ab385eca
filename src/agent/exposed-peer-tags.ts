import type { SessionBudget, TunnelEnd } from '../datapath/offload.js';
import type { DatagramOrigin } from '../protocol/tunnel/index.js';
import { ExposedPeerOffloads } from './peer-offload.js';
import type { PeerLink } from './peer-link.js';

/**
 * The exposing side's table of peers' flows (docs/connect.md): which connectee tags of our
 * exposed services the gateway named as a peer's flow (PEER_FLOW), with the gateway's origin, and
 * which of them were last heard over a direct path and from which link, so that replies go back
 * the way the datagrams came. A direct datagram is taken only for a tag of the sending link's
 * peer, and its origin is the gateway's, never the datagram's. Every change of a tag's way closes
 * its entries in the native batch (ExposedPeerOffloads).
 *
 * Contract: single-threaded. Tags are the gateway's connectee tags (top bit clear). The links are
 * not owned: a link that goes idle is reported with linkIdle().
 */
export class ExposedPeerTags {
  /** Tags last heard over a direct path, and from which link. */
  readonly #direct = new Map<number, PeerLink>();
  /** Tags that are peers' flows (PEER_FLOW): whose, and the gateway's origin. */
  readonly #flows = new Map<number, { readonly peer: string; readonly origin: DatagramOrigin }>();
  /** Their sessions forwarded in the native batch, by tag. */
  readonly #offloads = new ExposedPeerOffloads();

  /** PEER_FLOW: `tag` is a flow of `peer`; `origin` is the gateway's. */
  named(tag: number, peer: string, origin: DatagramOrigin): void {
    this.#flows.set(tag, { peer, origin });
  }

  /**
   * A direct datagram for `tag` came over `link`. Its origin when the tag is a flow of link's
   * peer (and replies go over `link` from now on); undefined, with nothing changed, otherwise.
   */
  arrivedDirect(link: PeerLink, tag: number): DatagramOrigin | undefined {
    const owner = this.#flows.get(tag);
    if (owner?.peer !== link.peer) return undefined;
    if (this.#direct.get(tag) !== link) {
      this.#direct.set(tag, link);
      this.#offloads.changed(tag);
    }
    return owner.origin;
  }

  /** A datagram for `tag` came through the gateway: its replies go back that way. */
  arrivedRelayed(tag: number): void {
    if (this.#direct.size !== 0 && this.#direct.delete(tag)) this.#offloads.changed(tag);
  }

  /** The link replies on `tag` go over, or undefined for the relay. */
  directLink(tag: number): PeerLink | undefined {
    return this.#direct.get(tag);
  }

  /** The tunnel side of `tag` for the native batch; any tag that is not a peer's flow gets `relay()` as is. */
  offloadEnd(tag: number, budget: SessionBudget, relay: () => TunnelEnd | null): TunnelEnd | null {
    if (!this.#flows.has(tag)) return relay();
    return this.#offloads.end(tag, this.#direct.get(tag), budget, relay, () => this.#direct.get(tag));
  }

  /** `tag` is gone (the service dropped it, or the gateway closed it). */
  forget(tag: number): void {
    this.#direct.delete(tag);
    this.#flows.delete(tag);
    this.#offloads.changed(tag);
  }

  /** `link` went idle: replies that went over it go through the gateway again. */
  linkIdle(link: PeerLink): void {
    for (const [tag, l] of this.#direct) {
      if (l !== link) continue;
      this.#direct.delete(tag);
      this.#offloads.changed(tag);
    }
  }

  /** Every tag is gone (the gateway did not resume the session). */
  clear(): void {
    this.#direct.clear();
    this.#flows.clear();
    this.#offloads.clear();
  }
}
