import type { Socket } from 'node:net';
import type { Clock } from '../core/clock.js';

export interface RefusalHoldOptions {
  /** A refused connection is kept, unread, between `holdMs` and twice that (random, so closes come spread out, not in one burst). */
  readonly holdMs: number;
  /** Connections held at most in total; beyond it a refused connection is closed at once. */
  readonly max: number;
  /** The same, per source address. */
  readonly maxPerSource: number;
}

/**
 * Keeps refused pre-authentication connections open, paused and unread, for `holdMs` before
 * closing them. A peer that reconnects the moment its connection closes would otherwise turn each
 * refusal into another connection at once, and a few thousand such peers keep the kernel's accept
 * queue so full that a legitimate connection waits behind them for seconds (measured: about 1 s
 * per attempt on loopback with 1,750 refused peers looping). Held, they cost one descriptor and
 * a paused socket each, and the loop runs at most once per `holdMs` per connection. Bounded in
 * total and per source; what does not fit is closed at once.
 */
export class RefusalHold {
  readonly #held = new Set<Socket>();
  readonly #perSource = new Map<string, number>();
  #closed = false;

  constructor(
    private readonly opts: RefusalHoldOptions,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.#held.size;
  }

  /** Takes `sock` (refused): holds it or destroys it now. Returns whether it is held. */
  refuse(sock: Socket, source: string): boolean {
    const n = this.#perSource.get(source) ?? 0;
    if (this.#closed || this.#held.size >= this.opts.max || n >= this.opts.maxPerSource || sock.destroyed) {
      sock.destroy();
      return false;
    }
    sock.pause();
    sock.on('error', () => {});
    this.#held.add(sock);
    this.#perSource.set(source, n + 1);
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      timer.cancel();
      this.#held.delete(sock);
      const left = (this.#perSource.get(source) ?? 1) - 1;
      if (left <= 0) this.#perSource.delete(source);
      else this.#perSource.set(source, left);
      sock.destroy();
    };
    const timer = this.clock.setTimeout(end, this.opts.holdMs * (1 + Math.random()));
    sock.once('close', end);
    return true;
  }

  /** Closes every held connection; later refusals are closed at once. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#held]) s.destroy();
  }
}
