import type { Clock, Timer } from '../core/clock.js';
import { windowTicks, type ReplyBudget } from '../core/reply-budget.js';

/**
 * Sweep period for a given idle timeout: fine enough that expiry lands within [T, T + 2 sweeps).
 * An idle timeout of 0 means "never" (as for TCP); the sweep then only flushes drop counts.
 */
export function sweepIntervalMs(idleTimeoutMs: number): number {
  if (idleTimeoutMs <= 0) return 250;
  return Math.max(10, Math.min(250, Math.floor(idleTimeoutMs / 8)));
}

/**
 * A session table's coarse time: the sweep timer and its tick count, the idle limit in ticks, and
 * the reply budget's window index. Datagrams read `tick` and `budgetWindow` (plain fields, no
 * clock call); only the sweep advances them.
 */
export class SweepTicks {
  /** Sweeps so far; a datagram stamps its session with it. */
  tick = 0;
  /** Ticks without a datagram after which a session is idle (Infinity: never). */
  idleTicks = 0;
  /** Reply budget ratio; 0 when the route has none. */
  budgetRatio = 0;
  /** Index of the current budget window: advanced on the sweep, read per datagram. */
  budgetWindow = 0;
  #budgetTicks = 1;
  #sweepMs = 0;
  #timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly onSweep: () => void,
  ) {}

  get sweepMs(): number {
    return this.#sweepMs;
  }

  /** Takes a policy's idle timeout and reply budget; restarts the timer only when its period changed. */
  schedule(idleTimeoutMs: number, budget: ReplyBudget | undefined): void {
    const sweepMs = sweepIntervalMs(idleTimeoutMs);
    // A datagram seen during tick k happened no earlier than the sweep that opened tick k, so a
    // session is idle for at least T once ceil(T / sweep) + 1 ticks have passed.
    this.idleTicks = idleTimeoutMs > 0 ? Math.ceil(idleTimeoutMs / sweepMs) + 1 : Infinity;
    this.budgetRatio = budget?.ratio ?? 0;
    if (budget) this.#budgetTicks = windowTicks(budget, sweepMs);
    if (sweepMs === this.#sweepMs && this.#timer) return;
    this.#timer?.cancel();
    this.#sweepMs = sweepMs;
    this.#timer = this.clock.setInterval(this.onSweep, sweepMs);
  }

  /** Starts the next tick; true when a new reply-budget window began with it. */
  advance(): boolean {
    const tick = ++this.tick;
    if (tick % this.#budgetTicks !== 0) return false;
    this.budgetWindow++;
    return true;
  }

  /** Stops the timer. Idempotent. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
