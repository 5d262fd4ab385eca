import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';

export interface AuthBackoffOptions {
  /** Failures from one address before it must wait. */
  readonly after: number;
  readonly initialMs: number;
  readonly maxMs: number;
  /** Addresses remembered at most (least recently failed forgotten first). */
  readonly maxEntries?: number;
}

interface Entry {
  failures: number;
  until: number;
}

/**
 * Per source address backoff for failed tunnel authentications (threats-and-tests EXP-1): after
 * `after` failures an address may try again only once the wait has passed, and the wait doubles
 * with each further failure up to `maxMs`. A success forgets the address. Memory is bounded by
 * `maxEntries` whatever the number of sources, so a flood of addresses costs a fixed amount; it
 * keeps no per-agent state.
 */
export class AuthBackoff {
  readonly #entries: LRUCache<string, Entry>;

  constructor(
    private readonly opts: AuthBackoffOptions,
    private readonly clock: Clock,
  ) {
    this.#entries = new LRUCache({ max: opts.maxEntries ?? 10_000 });
  }

  /** Milliseconds `address` must still wait, or 0. */
  waitMs(address: string): number {
    const e = this.#entries.peek(address);
    if (!e) return 0;
    return Math.max(0, Math.ceil(e.until - this.clock.now()));
  }

  failed(address: string): void {
    const e = this.#entries.get(address) ?? { failures: 0, until: 0 };
    e.failures++;
    if (e.failures >= this.opts.after) {
      const steps = e.failures - this.opts.after;
      e.until = this.clock.now() + Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(steps, 30));
    }
    this.#entries.set(address, e);
  }

  succeeded(address: string): void {
    this.#entries.delete(address);
  }
}
