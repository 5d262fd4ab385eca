import type { Clock, Timer } from '../../src/core/clock.js';

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  every: number | undefined;
  cancelled: boolean;
}

/** A Clock that moves only when told to. Due timers run in time order inside `advance`. */
export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers: Entry[] = [];

  constructor(readonly wallStart = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.wallStart + this.#now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.#add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#now = next.at;
      if (next.every !== undefined) {
        next.at += next.every;
        next.seq = this.#seq++;
      } else {
        next.cancelled = true;
      }
      next.fn();
    }
    this.#now = end;
  }

  get pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  #add(fn: () => void, ms: number, every: number | undefined): Timer {
    const entry: Entry = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, every, cancelled: false };
    this.#timers.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }
}
