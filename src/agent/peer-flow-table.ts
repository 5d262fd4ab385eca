import { PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { PeerFlow } from './peer-flow.js';
import type { PeerLink } from './peer-link.js';

/** Closed flows' tags kept for the next attach; beyond this the gateway's own idle timeout ends them. */
const CLOSED_WHILE_DOWN_MAX = 1024;

/**
 * The connecting side's UDP flows toward peers' services (docs/connect.md), by their relay tag
 * and, per link, by the peer's connectee tag (PEER_OPEN_OK). Relay tags are chosen here: the top
 * bit (PEER_TAG_BIT) set, the rest counting from 1 and wrapping after 2^31 - 1, skipping tags in
 * use. Tags of flows closed while the control channel was down wait here for the next attach
 * (at most 1024), as the gateway may still hold them.
 *
 * Contract: single-threaded. The table sets `tag` and `peerTag` of the flows it keys and nothing
 * else: their states, and what is sent, are the caller's.
 */
export class PeerFlowTable {
  readonly #byTag = new Map<number, PeerFlow>();
  readonly #byPeerTag = new Map<PeerLink, Map<number, PeerFlow>>();
  readonly #closedWhileDown: number[] = [];
  #nextTag = 1;

  get(tag: number): PeerFlow | undefined {
    return this.#byTag.get(tag);
  }

  values(): IterableIterator<PeerFlow> {
    return this.#byTag.values();
  }

  /** Keys `f` under a new relay tag (a new PEER_OPEN); returns its previous tag, 0 for none, to close. */
  rekey(f: PeerFlow): number {
    const old = f.tag;
    if (old !== 0) this.#byTag.delete(old);
    f.tag = this.#allocateTag();
    this.#byTag.set(f.tag, f);
    return old;
  }

  /** PEER_OPEN_OK: the peer's connectee tag of `f`, replacing the one it had. */
  setPeerTag(f: PeerFlow, peerTag: number): void {
    if (f.peerTag !== 0) this.#byPeerTag.get(f.link)?.delete(f.peerTag);
    f.peerTag = peerTag;
    let m = this.#byPeerTag.get(f.link);
    if (!m) this.#byPeerTag.set(f.link, (m = new Map()));
    m.set(peerTag, f);
  }

  /** The flow a direct datagram from `link` with the peer's tag `peerTag` belongs to. */
  byPeerTag(link: PeerLink, peerTag: number): PeerFlow | undefined {
    return this.#byPeerTag.get(link)?.get(peerTag);
  }

  /** The flows that have a peer tag on `link`. */
  ofLink(link: PeerLink): Iterable<PeerFlow> {
    return this.#byPeerTag.get(link)?.values() ?? [];
  }

  /** Forgets `f` under both its tags, where it is still the flow keyed there. */
  remove(f: PeerFlow): void {
    if (this.#byTag.get(f.tag) === f) this.#byTag.delete(f.tag);
    if (f.peerTag !== 0 && this.#byPeerTag.get(f.link)?.get(f.peerTag) === f) this.#byPeerTag.get(f.link)!.delete(f.peerTag);
  }

  /** A closed flow's tag to send DATAGRAM_CLOSE for on the next attach. */
  closeLater(tag: number): void {
    if (this.#closedWhileDown.length < CLOSED_WHILE_DOWN_MAX) this.#closedWhileDown.push(tag);
  }

  /** The tags closeLater() kept, in order; the list is emptied. */
  takeClosed(): number[] {
    return this.#closedWhileDown.splice(0);
  }

  #allocateTag(): number {
    for (;;) {
      const tag = (PEER_TAG_BIT | this.#nextTag) >>> 0;
      this.#nextTag = this.#nextTag >= 0x7fff_ffff ? 1 : this.#nextTag + 1;
      if (!this.#byTag.has(tag)) return tag;
    }
  }
}
