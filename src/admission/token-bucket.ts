import type { Clock } from '../core/clock.js';
import type { RateLimit } from '../config/types.js';

/**
 * A token bucket on the injected clock. `perSecond: 0` means unlimited. Refill is computed lazily
 * on `take`, so an idle bucket costs nothing.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    private limit: RateLimit,
    private readonly clock: Clock,
  ) {
    this.#tokens = limit.burst;
    this.#at = clock.now();
  }

  /** Takes one token; false when empty. */
  take(): boolean {
    if (this.limit.perSecond <= 0) return true;
    const now = this.clock.now();
    const refill = ((now - this.#at) / 1000) * this.limit.perSecond;
    this.#tokens = Math.min(Math.max(this.limit.burst, 1), this.#tokens + refill);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Gives back one token taken by `take` (never above the burst). */
  give(): void {
    if (this.limit.perSecond <= 0) return;
    this.#tokens = Math.min(Math.max(this.limit.burst, 1), this.#tokens + 1);
  }

  /** True when the bucket is full again, so a per-source map may forget it. */
  get full(): boolean {
    if (this.limit.perSecond <= 0) return true;
    const refill = ((this.clock.now() - this.#at) / 1000) * this.limit.perSecond;
    return this.#tokens + refill >= this.limit.burst;
  }

  setLimit(limit: RateLimit): void {
    this.limit = limit;
  }
}
