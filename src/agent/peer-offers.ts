import type { Clock, Timer } from '../core/clock.js';

/** An offer nobody answered within this is given up (the peer offline, or an agent without peers). */
export const ANSWER_TIMEOUT_MS = 10_000;
/** First wait before offering again after a refused or unanswered offer; doubles up to directRetry. */
export const FIRST_RETRY_MS = 1000;

/**
 * Glare (both sides offered at once): the controlling side keeps its own offer while it is
 * unanswered, and ignores the peer's, which carries another attempt id. The controlled side
 * always takes the peer's offer, so both end on the controlling side's attempt without a message.
 */
export function keepsOwnOffer(
  own: { readonly id: string; readonly answered: boolean } | undefined,
  offered: string,
  initiator: boolean,
  controlling: boolean,
): boolean {
  return own !== undefined && !own.answered && initiator && controlling && own.id !== offered;
}

/**
 * When the connecting side offers a direct path again (docs/connect.md): an offer gets
 * ANSWER_TIMEOUT_MS for its answer; an offer refused or unanswered is tried again after
 * FIRST_RETRY_MS, doubling up to `maxDelayMs` (the link's `directRetryMs`); an answer resets the
 * wait. At most one retry and one answer deadline are pending; each new one replaces the last.
 * The link decides whether a retry is wanted at all (it passes no callback when not).
 */
export class OfferSchedule {
  #retry: Timer | undefined;
  #answerTimer: Timer | undefined;
  #retryDelayMs = FIRST_RETRY_MS;

  constructor(
    private readonly clock: Clock,
    private readonly maxDelayMs: number,
  ) {}

  /** Replaces the pending retry with `offer` after `delayMs`, or with none. */
  retryIn(delayMs: number, offer: (() => void) | undefined): void {
    this.#retry?.cancel();
    this.#retry = offer ? this.clock.setTimeout(offer, delayMs) : undefined;
  }

  /** An offer went nowhere: retry after the current wait, and double the next one. */
  backOff(offer: (() => void) | undefined): void {
    const delay = this.#retryDelayMs;
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, this.maxDelayMs);
    this.retryIn(delay, offer);
  }

  cancelRetry(): void {
    this.#retry?.cancel();
    this.#retry = undefined;
  }

  /** An offer went out: `expired` runs after ANSWER_TIMEOUT_MS unless `cancelAnswer` comes first (it checks for the answer itself). */
  awaitAnswer(expired: () => void): void {
    this.#answerTimer?.cancel();
    this.#answerTimer = this.clock.setTimeout(expired, ANSWER_TIMEOUT_MS);
  }

  cancelAnswer(): void {
    this.#answerTimer?.cancel();
    this.#answerTimer = undefined;
  }

  /** The peer answered: the next failure waits FIRST_RETRY_MS again. */
  answered(): void {
    this.#retryDelayMs = FIRST_RETRY_MS;
  }
}
