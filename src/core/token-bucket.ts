import type { Clock } from './clock.js';

/** A rate: `perSecond` tokens added each second (0: unlimited), at most `burst` held. */
export interface TokenRate {
  readonly perSecond: number;
  readonly burst: number;
}

/**
 * A token bucket on the injected clock. `perSecond: 0` means unlimited. Refill is computed lazily
 * on each call, so an idle bucket costs nothing and no timer runs. Tokens are sessions for the
 * creation rates (`take`) and bytes for bandwidth limits (`tryTake`, `spend`).
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    private limit: TokenRate,
    private readonly clock: Clock,
  ) {
    this.#tokens = limit.burst;
    this.#at = clock.now();
  }

  /** Takes one token; false when empty. */
  take(): boolean {
    if (this.limit.perSecond <= 0) return true;
    this.#refill(Math.max(this.limit.burst, 1));
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Gives back one token taken by `take` (never above the burst). */
  give(): void {
    if (this.limit.perSecond <= 0) return;
    this.#tokens = Math.min(Math.max(this.limit.burst, 1), this.#tokens + 1);
  }

  /** True when at least `n` tokens are there at `now` (a datagram of `n` bytes fits); takes nothing. */
  has(n: number, now = this.clock.now()): boolean {
    if (this.limit.perSecond <= 0) return true;
    this.#refill(this.limit.burst, now);
    return this.#tokens >= n;
  }

  /** Takes `n` tokens that `has(n)` just said are there. */
  takeN(n: number): void {
    if (this.limit.perSecond > 0) this.#tokens -= n;
  }

  /**
   * Takes `n` tokens even when fewer are there (the bytes have already been read) and returns how
   * many milliseconds pass until the bucket is out of debt again: 0 when it is not in debt. A
   * stream reader pauses for that long, so the long-run rate is `perSecond` exactly.
   */
  spend(n: number, now = this.clock.now()): number {
    if (this.limit.perSecond <= 0) return 0;
    this.#refill(this.limit.burst, now);
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.limit.perSecond) * 1000;
  }

  /** True when the bucket is full again, so a per-source map may forget it. */
  get full(): boolean {
    if (this.limit.perSecond <= 0) return true;
    const refill = ((this.clock.now() - this.#at) / 1000) * this.limit.perSecond;
    return this.#tokens + refill >= this.limit.burst;
  }

  setLimit(limit: TokenRate): void {
    this.limit = limit;
  }

  #refill(cap: number, now = this.clock.now()): void {
    if (now !== this.#at) {
      this.#tokens = Math.min(cap, this.#tokens + ((now - this.#at) / 1000) * this.limit.perSecond);
      this.#at = now;
    }
  }
}
