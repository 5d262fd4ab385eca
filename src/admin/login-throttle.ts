import { canonicalIp, formatV6, ipv6Bytes } from '../core/address.js';
import type { Clock } from '../core/clock.js';

/** How hard guessing is made (docs/admin.md, "Guessing the token"). */
export interface ThrottleSettings {
  /** Wrong credentials a source may send before it must wait. */
  readonly freeFailures: number;
  /** Wait after the first failure beyond the free ones, in ms; each further failure doubles it. */
  readonly baseMs: number;
  /** Longest wait, in ms. */
  readonly maxMs: number;
  /** A source's count is forgotten this long after its last failure (ms). */
  readonly forgetAfterMs: number;
  /** Sources remembered at most; past it, the one whose last failure is oldest is forgotten. */
  readonly maxSources: number;
}

export const DEFAULT_THROTTLE: ThrottleSettings = { freeFailures: 5, baseMs: 1000, maxMs: 15 * 60_000, forgetAfterMs: 60 * 60_000, maxSources: 10_000 };

/** Totals since start, for metrics. Only grow. */
export interface ThrottleCounters {
  /** Requests with a credential refused (429) because their source must wait; no comparison was made. */
  throttled: number;
  /** Wrong tokens and cookies. */
  failures: number;
}

interface SourceState {
  failures: number;
  /** Monotonic ms before which the source is refused. */
  until: number;
  last: number;
}

/**
 * Per-source exponential backoff for the admin token, consulted BEFORE any credential is
 * compared: while a source must wait, even the right token is refused, so throttling slows
 * guessing instead of only answering wrong guesses slowly. A source is an IPv4 address or an IPv6
 * /64 (what one customer gets; a /128 key would give each of its 2^64 addresses a fresh
 * allowance). The wait after failure n (n > freeFailures) is baseMs * 2^(n - freeFailures - 1),
 * at most maxMs; a success clears the source. Memory is bounded by maxSources.
 */
export class LoginThrottle {
  readonly counters: ThrottleCounters = { throttled: 0, failures: 0 };
  readonly #sources = new Map<string, SourceState>();

  constructor(
    private readonly clock: Clock,
    private readonly settings: ThrottleSettings = DEFAULT_THROTTLE,
  ) {}

  /** Milliseconds `remote` must still wait before a credential of it is looked at; 0 when it may try now. Counts a refusal. */
  admit(remote: string | undefined): number {
    const s = this.#state(sourceKey(remote));
    const wait = s ? Math.max(0, s.until - this.clock.now()) : 0;
    if (wait > 0) this.counters.throttled++;
    return wait;
  }

  /** A wrong token or cookie from `remote`. */
  failed(remote: string | undefined): void {
    this.counters.failures++;
    const key = sourceKey(remote);
    const now = this.clock.now();
    let s = this.#state(key);
    if (s) this.#sources.delete(key); // re-inserted last: the Map's order is the order of last failures
    else s = { failures: 0, until: 0, last: now };
    s.failures++;
    s.last = now;
    const over = s.failures - this.settings.freeFailures;
    if (over > 0) s.until = now + Math.min(this.settings.maxMs, this.settings.baseMs * 2 ** Math.min(over - 1, 40));
    this.#sources.set(key, s);
    if (this.#sources.size > this.settings.maxSources) this.#sources.delete(this.#sources.keys().next().value!);
  }

  /** The right credential from `remote`: its count starts over. */
  succeeded(remote: string | undefined): void {
    this.#sources.delete(sourceKey(remote));
  }

  #state(key: string): SourceState | undefined {
    const s = this.#sources.get(key);
    if (s && this.clock.now() - s.last >= this.settings.forgetAfterMs && this.clock.now() >= s.until) {
      this.#sources.delete(key);
      return undefined;
    }
    return s;
  }
}

/** IPv4 address, or the IPv6 /64 the address is in; text that is no address is one shared source. */
export function sourceKey(remote: string | undefined): string {
  const ip = canonicalIp(remote ?? '');
  if (!ip) return '?';
  if (ip.family === 4) return ip.address;
  const b = ipv6Bytes(ip.address)!;
  b.fill(0, 8);
  return `${formatV6(b)}/64`;
}
