import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import type { ReplyBudgetState } from '../core/reply-budget.js';
import { nextTag, tagBytes } from '../protocol/udpexposer/frame.js';
import { MAX_TAG } from '../protocol/udpexposer/constants.js';
import { UdpexposerError } from '../protocol/udpexposer/errors.js';
import type { OffloadHolder } from './channel-offload.js';

/**
 * The server's connectees: one entry per source ip:port, each with its tag.
 *
 * udpexposer keeps two independent LRU maps (address → tag, promoted by connectee traffic; and
 * tag → address, FIFO), which disagree under pressure: a connectee can keep sending under a tag
 * whose replies are dropped (protocols.md §1.4). This table is one map with both indexes, so an
 * entry is either fully present or fully gone. Order is least-recently-heard-from, as in
 * udpexposer's forward map (and its client's worker LRU, which is promoted by the same traffic);
 * replies from the client do not promote, so a connectee that only receives ages out first.
 *
 * When the table is full, a newcomer evicts the least recently heard-from entry only if that one
 * has been silent for `evictIdleAfterMs`; otherwise the newcomer is refused. So a flood of new
 * sources cannot push out connectees that are actually talking (threats-and-tests TH-3).
 * `evictIdleAfterMs: 0` gives plain LRU eviction (udpexposer's choice, minus the disagreement).
 *
 * Tags count 1, 2, 3, ... and wrap 65535 → 0 like udpexposer's u16, but skip tags still in use,
 * so a long-lived connectee never shares its tag with a new one.
 */

export interface Connectee extends ReplyBudgetState, OffloadHolder {
  readonly tag: number;
  /** The tag as its two wire bytes, made once: every frame to the client starts with them. */
  readonly tagBytes: Buffer;
  /** The source as the socket reported it: replies go exactly here. */
  readonly address: string;
  readonly port: number;
  readonly key: number | string;
  /** clock.now() of the last datagram from this connectee. */
  lastHeardMs: number;
  bytesIn: number;
  bytesOut: number;
  datagramsIn: number;
  datagramsOut: number;
  /** Handed over to the batch once (server-offloads.ts); cleared when its entries go. */
  offloadTried: boolean;
}

export interface ConnecteeTableOptions {
  /** udpexposer's `-n`: at most this many connectees (1-65535). */
  readonly capacity: number;
  /** A full table evicts its least recently heard-from entry only after this much silence. */
  readonly evictIdleAfterMs: number;
}

export type ConnecteeLookup =
  | { readonly kind: 'known'; readonly connectee: Connectee }
  | { readonly kind: 'added'; readonly connectee: Connectee; readonly evicted: Connectee | undefined }
  | { readonly kind: 'full' };

export class ConnecteeTable {
  readonly #byPeer: LRUCache<number | string, Connectee>;
  readonly #byTag = new Map<number, Connectee>();
  readonly #opts: ConnecteeTableOptions;
  readonly #clock: Clock;
  #lastTag = 0;

  constructor(opts: ConnecteeTableOptions, clock: Clock) {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1 || opts.capacity > MAX_TAG) {
      throw new UdpexposerError(`capacity must be 1-${MAX_TAG}, got ${opts.capacity}`);
    }
    this.#opts = opts;
    this.#clock = clock;
    this.#byPeer = new LRUCache({
      max: opts.capacity,
      // The one place entries leave: keeps the tag index coherent whatever removed the entry.
      dispose: (c) => {
        if (this.#byTag.get(c.tag) === c) this.#byTag.delete(c.tag);
      },
    });
  }

  get size(): number {
    return this.#byPeer.size;
  }

  /**
   * The entry for a datagram from a connectee: promoted if known, added if there is room (or an
   * idle entry to evict). Does not count the datagram; the caller does.
   */
  fromConnectee(key: number | string, address: string, port: number): ConnecteeLookup {
    const known = this.heard(key);
    if (known !== undefined) return { kind: 'known', connectee: known };
    const now = this.#clock.now();
    let evicted: Connectee | undefined;
    if (this.#byPeer.size >= this.#opts.capacity) {
      const oldest = this.#oldest();
      if (oldest === undefined || now - oldest.lastHeardMs < this.#opts.evictIdleAfterMs) return { kind: 'full' };
      this.#byPeer.delete(oldest.key);
      evicted = oldest;
    }
    const tag = this.#allocateTag();
    const c: Connectee = {
      tag,
      tagBytes: tagBytes(tag),
      address,
      port,
      key,
      lastHeardMs: now,
      bytesIn: 0,
      bytesOut: 0,
      datagramsIn: 0,
      datagramsOut: 0,
      budgetWindow: 0,
      budgetIn: 0,
      budgetInPrev: 0,
      budgetOut: 0,
      budgetOutPrev: 0,
      offload: null,
      offloadSeen: null,
      offloadTried: false,
    };
    this.#byPeer.set(key, c);
    this.#byTag.set(c.tag, c);
    return { kind: 'added', connectee: c, evicted };
  }

  /**
   * A datagram from `key`: the known entry, promoted, or undefined (nothing is added). The fast
   * path for a source the socket reported as a number; no allocation.
   */
  heard(key: number | string): Connectee | undefined {
    const known = this.#byPeer.get(key);
    if (known !== undefined) known.lastHeardMs = this.#clock.now();
    return known;
  }

  /** The entry a client frame's tag names, without promoting it (as udpexposer's `peek`). */
  byTag(tag: number): Connectee | undefined {
    return this.#byTag.get(tag);
  }

  /** Entries from least to most recently heard from. */
  *entries(): IterableIterator<Connectee> {
    for (const c of this.#byPeer.rvalues()) if (c !== undefined) yield c;
  }

  clear(): void {
    this.#byPeer.clear();
  }

  #oldest(): Connectee | undefined {
    for (const c of this.#byPeer.rvalues()) return c;
    return undefined;
  }

  #allocateTag(): number {
    // At most `capacity` tags are in use and capacity <= 65535, so a free one is always found.
    let t = this.#lastTag;
    do t = nextTag(t);
    while (this.#byTag.has(t));
    this.#lastTag = t;
    return t;
  }
}
