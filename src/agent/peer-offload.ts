import { OffloadGroup, type SessionBudget, type TunnelEnd } from '../datapath/offload.js';
import { PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { PeerLink } from './peer-link.js';

/**
 * The exposing side of peer flows in the native batch (docs/datapath.md, "Peer paths in the
 * batch"): a session of an exposed service that is a peer's flow has its tunnel side on the
 * direct path its datagrams last came by, or on the relay. Each tag has a group its entries join,
 * closed at once when the tag's path changes (a direct datagram from another link, a relayed one
 * after direct ones, the tag forgotten), so the batch never keeps answering the old way; the next
 * datagram through JavaScript installs the new way.
 */
export class ExposedPeerOffloads {
  readonly #groups = new Map<number, OffloadGroup>();

  /** The path of `tag` changed, or the tag is gone: its entries are removed now. */
  changed(tag: number): void {
    const g = this.#groups.get(tag);
    if (!g) return;
    this.#groups.delete(tag);
    g.closeAll();
  }

  clear(): void {
    for (const g of this.#groups.values()) g.closeAll();
    this.#groups.clear();
  }

  /**
   * The tunnel side of exposed tag `tag` (a peer's flow): over `link`'s direct path when replies
   * go there (`link` is where its direct datagrams come from), else the relay's end, valid while
   * no direct datagram arrived for it. `budget`: the session's send budget, its pools included,
   * so the batch refills the direct path's credit itself as it does the relay's.
   */
  end(tag: number, link: PeerLink | undefined, budget: SessionBudget, relay: () => TunnelEnd | null, current: () => PeerLink | undefined): TunnelEnd | null {
    let g = this.#groups.get(tag);
    if (!g) this.#groups.set(tag, (g = new OffloadGroup()));
    const group = g;
    if (link) {
      return link.offloadEnd({
        tag: (tag | PEER_TAG_BIT) >>> 0,
        tagIn: tag,
        ...budget,
        forwarded: () => {},
        valid: () => current() === link,
        groups: [group],
      });
    }
    const r = relay();
    if (!r) return null;
    return { ...r, valid: () => r.valid() && current() === undefined, groups: [...(r.groups ?? []), group] };
  }
}
