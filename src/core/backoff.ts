import { SluiceError } from './errors.js';

export interface BackoffOptions {
  /** First delay before jitter. Default 5 000. */
  readonly initialMs?: number;
  /** No delay is ever longer than this, jitter included. Default 300 000 (5 min). */
  readonly maxMs?: number;
  /** Growth per attempt. Default 2. */
  readonly multiplier?: number;
  /** Randomisation factor: a delay is the nominal one times 1 ± jitter. Default 0.5, as NetBird's. */
  readonly jitter?: number;
}

export const DEFAULT_BACKOFF = { initialMs: 5_000, maxMs: 300_000, multiplier: 2, jitter: 0.5 } as const;

/**
 * Exponential backoff with jitter and no limit on attempts (reference-behaviours.md, NetBird's
 * kernel flow logger: 5 s initial, 5 min cap, 50 % randomisation, forever).
 *
 * The nominal delay of attempt n (from 0) is min(initialMs * multiplier^n, maxMs); the delay
 * returned is that times a uniform factor in [1 - jitter, 1 + jitter], then capped at maxMs, so
 * the cap really is the longest wait. Jitter keeps many nodes that lost their event source at the
 * same moment (a kernel upgrade, a package update) from restarting in step.
 */
export class Backoff {
  readonly #o: Required<BackoffOptions>;
  readonly #random: () => number;
  #attempt = 0;

  /**
   * Throws SluiceError `SLUICE_ERR_CONFIG_INVALID` for options out of range; the message starts
   * with `where` (the settings the options came from, e.g. `conntrack`) when given.
   */
  constructor(opts: BackoffOptions = {}, random: () => number = Math.random, where?: string) {
    const o = { ...DEFAULT_BACKOFF, ...stripUndefined(opts) };
    const bad: string[] = [];
    if (!(Number.isFinite(o.initialMs) && o.initialMs > 0)) bad.push('backoff.initialMs: must be a positive number');
    if (!(Number.isFinite(o.maxMs) && o.maxMs >= o.initialMs)) bad.push('backoff.maxMs: must be at least initialMs');
    if (!(Number.isFinite(o.multiplier) && o.multiplier >= 1)) bad.push('backoff.multiplier: must be at least 1');
    if (!(Number.isFinite(o.jitter) && o.jitter >= 0 && o.jitter <= 1)) bad.push('backoff.jitter: must be from 0 to 1');
    if (bad.length > 0) throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `${where === undefined ? '' : `${where}: `}${bad.join('; ')}`);
    this.#o = o;
    this.#random = random;
  }

  /** Attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The nominal (un-jittered) delay of attempt `n`. */
  nominalMs(n: number): number {
    const { initialMs, maxMs, multiplier } = this.#o;
    let d = initialMs;
    for (let i = 0; i < n && d < maxMs; i++) d *= multiplier;
    return Math.min(d, maxMs);
  }

  /** The delay before the next attempt; advances the attempt count. */
  next(): number {
    const nominal = this.nominalMs(this.#attempt++);
    const factor = 1 + this.#o.jitter * (2 * this.#random() - 1);
    return Math.round(Math.min(this.#o.maxMs, Math.max(0, nominal * factor)));
  }

  /** Back to the initial delay (after a run that stayed up long enough to count as healthy). */
  reset(): void {
    this.#attempt = 0;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
