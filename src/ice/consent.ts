import type { Clock, Timer } from '../core/clock.js';

/**
 * Consent freshness for the selected pair (RFC 7675): a check every 5 s, randomised to
 * 0.8-1.2 × that so agents do not synchronise (§5.1); consent, and with it the right to send,
 * expires 30 s after the last authenticated response from the peer. Only responses to our own
 * checks count: received data and the peer's checks prove nothing about consent (§5.1).
 *
 * `stale` is Sluice's early warning, the agent's `disconnected` state: no consent for `staleMs`
 * (default 10 s, i.e. about two checks missed). It clears with the next response.
 */

export interface ConsentTiming {
  readonly intervalMs: number;
  readonly staleMs: number;
  readonly expireMs: number;
}

export const RFC7675_TIMING: ConsentTiming = Object.freeze({ intervalMs: 5000, staleMs: 10_000, expireMs: 30_000 });

export type ConsentStatus = 'fresh' | 'stale' | 'expired';

export interface ConsentDeps {
  readonly clock: Clock;
  /** [0, 1), for the jitter. */
  readonly random: () => number;
  /** Sends one consent check on the selected pair; true when an authenticated success came back. Never rejects. */
  readonly check: () => Promise<boolean>;
  /** Called on every change of status; 'expired' is final. */
  readonly onStatus: (status: ConsentStatus) => void;
}

export class ConsentFreshness {
  readonly #deps: ConsentDeps;
  readonly #timing: ConsentTiming;
  #status: ConsentStatus = 'fresh';
  #last: number;
  #next: Timer | undefined;
  #stale: Timer | undefined;
  #expire: Timer | undefined;
  #stopped = false;

  /** Starts at once; `grantedAt` is the clock time of the check that established the pair. */
  constructor(deps: ConsentDeps, timing: ConsentTiming = RFC7675_TIMING, grantedAt = deps.clock.now()) {
    this.#deps = deps;
    this.#timing = timing;
    this.#last = grantedAt;
    this.#armDeadlines();
    this.#schedule();
  }

  get status(): ConsentStatus {
    return this.#status;
  }

  /** Clock ms of the last authenticated response. */
  get lastConsentAt(): number {
    return this.#last;
  }

  /** Stops every timer; a check in flight is ignored when it returns. Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#next?.cancel();
    this.#stale?.cancel();
    this.#expire?.cancel();
  }

  #schedule(): void {
    const ms = this.#timing.intervalMs * (0.8 + 0.4 * this.#deps.random());
    this.#next = this.#deps.clock.setTimeout(() => this.#tick(), ms);
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#schedule();
    void this.#deps.check().then((ok) => {
      if (!ok || this.#stopped) return;
      this.#last = this.#deps.clock.now();
      this.#armDeadlines();
      this.#set('fresh');
    });
  }

  #armDeadlines(): void {
    this.#stale?.cancel();
    this.#expire?.cancel();
    const left = (ms: number) => Math.max(0, this.#last + ms - this.#deps.clock.now());
    this.#stale = this.#deps.clock.setTimeout(() => this.#set('stale'), left(this.#timing.staleMs));
    this.#expire = this.#deps.clock.setTimeout(() => {
      this.stop();
      this.#set('expired');
    }, left(this.#timing.expireMs));
  }

  #set(status: ConsentStatus): void {
    if (this.#status === status || this.#status === 'expired') return;
    this.#status = status;
    this.#deps.onStatus(status);
  }
}
