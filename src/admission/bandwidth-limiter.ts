import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import type { BandwidthLimit, BandwidthSettings, RateLimit } from '../config/types.js';
import { TokenBucket } from './token-bucket.js';

/** How many per-source bucket pairs one route remembers; a forgotten source starts with a full burst. */
export const BANDWIDTH_SOURCES = 65_536;

/**
 * The byte buckets one direction of one flow must pass: its source's and its route's (either may be
 * absent). A datagram passes only when every bucket holds its size (`tryTake`); a stream spends
 * what it read and waits out the debt (`spend`).
 */
export class BandwidthGate {
  constructor(
    private readonly source: TokenBucket | null,
    private readonly route: TokenBucket | null,
    private readonly clock: Clock,
  ) {}

  /** Takes `n` bytes from every bucket when all hold them; false (nothing taken) when one does not. */
  tryTake(n: number): boolean {
    const a = this.source;
    const b = this.route;
    const now = this.clock.now(); // once per datagram for both buckets: reading the clock is most of the cost
    if (a !== null && !a.has(n, now)) return false;
    if (b !== null && !b.has(n, now)) return false;
    a?.takeN(n);
    b?.takeN(n);
    return true;
  }

  /** Spends `n` bytes already read; milliseconds until every bucket is out of debt (0: go on). */
  spend(n: number): number {
    const now = this.clock.now();
    const a = this.source === null ? 0 : this.source.spend(n, now);
    const b = this.route === null ? 0 : this.route.spend(n, now);
    return a > b ? a : b;
  }
}

/** The gates of one flow; null where that direction has no limit. */
export interface FlowGates {
  readonly up: BandwidthGate | null;
  readonly down: BandwidthGate | null;
}

interface SourceBuckets {
  readonly up: TokenBucket | null;
  readonly down: TokenBucket | null;
}

/**
 * Bandwidth limits of one route: one bucket pair for the route, one per source key
 * (AdmissionLimits.keyOf: the address, or its IPv6 /64 by default) in a bounded LRU. Gates are
 * handed out when a flow starts and kept by the flow, so the per-byte path does no lookup. New
 * settings (`update`) apply to flows started afterwards.
 */
export class BandwidthLimiter {
  #settings: BandwidthSettings;
  #route: SourceBuckets;
  readonly #sources = new LRUCache<string, SourceBuckets>({ max: BANDWIDTH_SOURCES });

  constructor(
    settings: BandwidthSettings,
    private readonly clock: Clock,
  ) {
    this.#settings = settings;
    this.#route = this.#pair(settings.perRoute);
  }

  /** The gates of a new flow of `source`. */
  gatesFor(source: string): FlowGates {
    const per = this.#settings.perSource;
    let s: SourceBuckets | undefined;
    if (per !== undefined) {
      s = this.#sources.get(source);
      if (s === undefined) this.#sources.set(source, (s = this.#pair(per)));
    }
    return { up: gate(s?.up ?? null, this.#route.up, this.clock), down: gate(s?.down ?? null, this.#route.down, this.clock) };
  }

  update(settings: BandwidthSettings): void {
    if (JSON.stringify(settings) === JSON.stringify(this.#settings)) return;
    this.#settings = settings;
    this.#route = this.#pair(settings.perRoute);
    this.#sources.clear();
  }

  #pair(limit: BandwidthLimit | undefined): SourceBuckets {
    return { up: this.#bucket(limit?.up), down: this.#bucket(limit?.down) };
  }

  #bucket(rate: RateLimit | undefined): TokenBucket | null {
    return rate === undefined || rate.perSecond <= 0 ? null : new TokenBucket(rate, this.clock);
  }
}

function gate(source: TokenBucket | null, route: TokenBucket | null, clock: Clock): BandwidthGate | null {
  return source === null && route === null ? null : new BandwidthGate(source, route, clock);
}

/** A limiter for a route with `bandwidth`, else null (the datapath then skips all bandwidth work). */
export function bandwidthLimiterFor(settings: BandwidthSettings | undefined, clock: Clock): BandwidthLimiter | null {
  return settings === undefined || (settings.perSource === undefined && settings.perRoute === undefined) ? null : new BandwidthLimiter(settings, clock);
}
