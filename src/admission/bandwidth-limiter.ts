import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import type { BandwidthLimit, BandwidthSettings, RateLimit } from '../config/types.js';
import { TokenBucket } from '../core/token-bucket.js';

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
    /** Buckets shared with other routes (an agent's total on the gateway). */
    private readonly shared: TokenBucket | null,
    private readonly clock: Clock,
  ) {}

  /** Takes `n` bytes from every bucket when all hold them; false (nothing taken) when one does not. */
  tryTake(n: number): boolean {
    const a = this.source;
    const b = this.route;
    const c = this.shared;
    const now = this.clock.now(); // once per datagram for every bucket: reading the clock is most of the cost
    if (a !== null && !a.has(n, now)) return false;
    if (b !== null && !b.has(n, now)) return false;
    if (c !== null && !c.has(n, now)) return false;
    a?.takeN(n);
    b?.takeN(n);
    c?.takeN(n);
    return true;
  }

  /** Spends `n` bytes already read; milliseconds until every bucket is out of debt (0: go on). */
  spend(n: number): number {
    const now = this.clock.now();
    const a = this.source === null ? 0 : this.source.spend(n, now);
    const b = this.route === null ? 0 : this.route.spend(n, now);
    const c = this.shared === null ? 0 : this.shared.spend(n, now);
    return Math.max(a, b, c);
  }
}

/** The gates of one flow; null where that direction has no limit. */
export interface FlowGates {
  readonly up: BandwidthGate | null;
  readonly down: BandwidthGate | null;
}

/** The buckets of one scope, one per direction; null where that direction is unlimited. */
export interface BucketPair {
  readonly up: TokenBucket | null;
  readonly down: TokenBucket | null;
}

/** A bucket pair for `limit` (absent: both null). */
export function bucketPair(limit: BandwidthLimit | undefined, clock: Clock): BucketPair {
  const bucket = (rate: RateLimit | undefined) => (rate === undefined || rate.perSecond <= 0 ? null : new TokenBucket(rate, clock));
  return { up: bucket(limit?.up), down: bucket(limit?.down) };
}

/**
 * Bandwidth limits of one route: one bucket pair for the route, one per source key
 * (AdmissionLimits.keyOf: the address, or its IPv6 /64 by default) in a bounded LRU. Gates are
 * handed out when a flow starts and kept by the flow, so the per-byte path does no lookup. New
 * settings (`update`) apply to flows started afterwards.
 */
export class BandwidthLimiter {
  #settings: BandwidthSettings;
  #route: BucketPair;
  readonly #sources = new LRUCache<string, BucketPair>({ max: BANDWIDTH_SOURCES });

  constructor(
    settings: BandwidthSettings,
    private readonly clock: Clock,
    /** Buckets this route shares with others (an agent's `perAgent` on the gateway). */
    private readonly shared?: BucketPair,
  ) {
    this.#settings = settings;
    this.#route = bucketPair(settings.perRoute, clock);
  }

  /** The gates of a new flow of `source`. */
  gatesFor(source: string): FlowGates {
    const per = this.#settings.perSource;
    let s: BucketPair | undefined;
    if (per !== undefined) {
      s = this.#sources.get(source);
      if (s === undefined) this.#sources.set(source, (s = bucketPair(per, this.clock)));
    }
    return {
      up: gate(s?.up ?? null, this.#route.up, this.shared?.up ?? null, this.clock),
      down: gate(s?.down ?? null, this.#route.down, this.shared?.down ?? null, this.clock),
    };
  }

  update(settings: BandwidthSettings): void {
    if (JSON.stringify(settings) === JSON.stringify(this.#settings)) return;
    this.#settings = settings;
    this.#route = bucketPair(settings.perRoute, this.clock);
    this.#sources.clear();
  }
}

function gate(source: TokenBucket | null, route: TokenBucket | null, shared: TokenBucket | null, clock: Clock): BandwidthGate | null {
  return source === null && route === null && shared === null ? null : new BandwidthGate(source, route, shared, clock);
}

/** A limiter for a route with `bandwidth` or shared buckets, else null (the datapath then skips all bandwidth work). */
export function bandwidthLimiterFor(settings: BandwidthSettings | undefined, clock: Clock, shared?: BucketPair): BandwidthLimiter | null {
  const none = settings === undefined || (settings.perSource === undefined && settings.perRoute === undefined);
  if (none && (shared === undefined || (shared.up === null && shared.down === null))) return null;
  return new BandwidthLimiter(settings ?? {}, clock, shared);
}
