import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import type { RateLimit } from '../config/types.js';
import type { RejectReason } from '../observe/events.js';
import { TokenBucket } from '../core/token-bucket.js';
import type { Endpoint } from '../core/address.js';
import { sourceKey } from './source-key.js';
import { DEFAULT_SOURCE_PREFIX, type SourcePrefix } from '../core/source-prefix.js';

export interface LimitSettings {
  readonly maxPerRoute: number;
  readonly maxPerSource: number;
  readonly rate: RateLimit;
  readonly ratePerSource: RateLimit;
  /** What one source is (default IPv4 /32, IPv6 /64). */
  readonly sourcePrefix?: SourcePrefix;
}

/** The live sessions of one source (AdmissionLimits' per-source count). */
interface SourceCount {
  readonly source: string;
  n: number;
}

/** How many per-source buckets are remembered; older ones are forgotten (a forgotten source starts full). */
const SOURCE_BUCKETS = 65_536;

/**
 * Caps and creation rates for one route, per route and per source. A source is the client's
 * `keyOf` (its address, or its IPv6 /64 by default); callers compute it once per new session or
 * connection, keep it, and pass it to `admit`, `acquire` and `release`. Used before anything is
 * allocated for the session. `release` must be called exactly once for every successful `admit`.
 */
export class AdmissionLimits {
  #active = 0;
  /**
   * Live sessions by source. A count is an object changed in place, so `acquire` and `release`
   * make at most one lookup each and no `set`; the last source used is kept beside the map (most
   * connections come from a source seen just before), so a run of them makes none. A count that
   * drops to 0 leaves the map and the cache.
   */
  readonly #perSource = new Map<string, SourceCount>();
  #last: SourceCount | undefined;
  readonly #routeBucket: TokenBucket;
  readonly #sourceBuckets = new LRUCache<string, TokenBucket>({ max: SOURCE_BUCKETS });

  constructor(
    private settings: LimitSettings,
    private readonly clock: Clock,
  ) {
    this.#routeBucket = new TokenBucket(settings.rate, clock);
  }

  /** The per-source key of a canonical client address under the current `sourcePrefix`. */
  keyOf(client: Pick<Endpoint, 'address' | 'family'>): string {
    return sourceKey(client, this.settings.sourcePrefix ?? DEFAULT_SOURCE_PREFIX);
  }

  get active(): number {
    return this.#active;
  }

  activeFor(source: string): number {
    return this.#countOf(source)?.n ?? 0;
  }

  #countOf(source: string): SourceCount | undefined {
    const last = this.#last;
    if (last !== undefined && last.source === source) return last;
    const c = this.#perSource.get(source);
    if (c !== undefined) this.#last = c;
    return c;
  }

  /**
   * Checks caps then rates. `routeCapIsSoft` is true when the caller will evict a session to make
   * room, so the route cap does not refuse (the rate still does).
   */
  admit(source: string, routeCapIsSoft = false): RejectReason | undefined {
    const s = this.settings;
    if (s.maxPerSource > 0 && (this.#countOf(source)?.n ?? 0) >= s.maxPerSource) return 'limit-source-sessions';
    if (!routeCapIsSoft && s.maxPerRoute > 0 && this.#active >= s.maxPerRoute) return 'limit-route-sessions';
    if (s.ratePerSource.perSecond > 0) {
      let b = this.#sourceBuckets.get(source);
      if (!b) this.#sourceBuckets.set(source, (b = new TokenBucket(s.ratePerSource, this.clock)));
      if (!b.take()) return 'limit-source-rate';
    }
    if (!this.#routeBucket.take()) return 'limit-route-rate';
    return undefined;
  }

  /**
   * Gives back the creation tokens `admit` took for one session of `source`. UDP calls it when the
   * upstream first answers a session: the rates count sessions that have not been answered, so a
   * request/response client (DNS: a new source port per query) is never refused for its pace,
   * while sessions nobody answers (scans, floods of fresh ports) stay limited. What answered
   * sessions hold is bounded by the caps and the idle timeout instead.
   */
  refund(source: string): void {
    if (this.settings.ratePerSource.perSecond > 0) this.#sourceBuckets.peek(source)?.give();
    this.#routeBucket.give();
  }

  /** True when the route is at its cap (an evicting caller then makes room first). */
  get atRouteCap(): boolean {
    return this.settings.maxPerRoute > 0 && this.#active >= this.settings.maxPerRoute;
  }

  acquire(source: string): void {
    this.#active++;
    const c = this.#countOf(source);
    if (c !== undefined) {
      c.n++;
      return;
    }
    const added: SourceCount = { source, n: 1 };
    this.#perSource.set(source, added);
    this.#last = added;
  }

  release(source: string): void {
    this.#active--;
    const c = this.#countOf(source);
    if (c === undefined || --c.n > 0) return;
    this.#perSource.delete(source);
    if (this.#last === c) this.#last = undefined;
  }

  update(settings: LimitSettings): void {
    const rateChanged =
      JSON.stringify(settings.ratePerSource) !== JSON.stringify(this.settings.ratePerSource) ||
      JSON.stringify(settings.sourcePrefix) !== JSON.stringify(this.settings.sourcePrefix);
    this.settings = settings;
    this.#routeBucket.setLimit(settings.rate);
    if (rateChanged) this.#sourceBuckets.clear();
  }
}
