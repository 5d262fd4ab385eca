import type { Clock, Timer } from '../core/clock.js';

/** First retry of a route whose listener could not bind; doubles up to the maximum. */
export const BIND_RETRY_MS = 1000;

interface Blocked {
  message: string;
  attempts: number;
  /** True once the retry timer fired: the route is tried again at the next apply. */
  due: boolean;
  timer: Timer | undefined;
}

/**
 * The label routes whose listener could not bind (docs/containers.md), by route key. A blocked
 * route sits out applies until its retry is due: BIND_RETRY_MS after the first failure, doubling
 * with each failure up to `maxMs` (`docker.reconnect.max`, at least BIND_RETRY_MS). When a retry
 * falls due, `due` runs (the owner schedules an apply); the owner forgets a route once it runs or
 * is no longer wanted. Timers run on the injected clock; `close` cancels them all.
 */
export class BindRetries {
  readonly #blocked = new Map<string, Blocked>();

  constructor(
    private readonly clock: Clock,
    private readonly maxMs: number,
    private readonly due: () => void,
  ) {}

  /** The route `key` failed to bind with `message`: it waits for its next retry. */
  block(key: string, message: string): void {
    const b = this.#blocked.get(key) ?? { message, attempts: 0, due: false, timer: undefined };
    b.message = message;
    b.attempts++;
    b.due = false;
    b.timer?.cancel();
    const delayMs = Math.min(BIND_RETRY_MS * 2 ** (b.attempts - 1), Math.max(BIND_RETRY_MS, this.maxMs));
    b.timer = this.clock.setTimeout(() => {
      b.timer = undefined;
      b.due = true;
      this.due();
    }, delayMs);
    this.#blocked.set(key, b);
  }

  /** False while `key` waits for its retry timer. */
  mayTry(key: string): boolean {
    const b = this.#blocked.get(key);
    return !b || b.due;
  }

  /** Forgets (and stops retrying) every blocked route for which `done` is true. */
  forget(done: (key: string) => boolean): void {
    for (const [key, b] of this.#blocked) {
      if (done(key)) {
        b.timer?.cancel();
        this.#blocked.delete(key);
      }
    }
  }

  /** Each blocked route's key and its latest bind error, in the order they first failed. */
  *failures(): IterableIterator<readonly [key: string, message: string]> {
    for (const [key, b] of this.#blocked) yield [key, b.message];
  }

  /** Cancels every retry timer; nothing falls due afterwards. */
  close(): void {
    for (const b of this.#blocked.values()) b.timer?.cancel();
  }
}
