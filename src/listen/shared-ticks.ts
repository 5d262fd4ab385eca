import type { Clock, Timer } from '../core/clock.js';

/**
 * A clock whose intervals of one period share one timer of the underlying clock: the thousands
 * of per-port session tables of a port range (range-route.ts) each sweep on an interval, and
 * one timer per period instead of one per port keeps an idle range near-free in CPU. Callbacks
 * of one period run in the order they were added; a cancelled one is removed at once.
 */
export function sharedTicks(clock: Clock): Clock {
  const groups = new Map<number, { fns: Set<() => void>; timer: Timer }>();
  return {
    now: () => clock.now(),
    wallNow: () => clock.wallNow(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    setInterval(fn, ms) {
      let g = groups.get(ms);
      if (!g) {
        const fns = new Set<() => void>();
        g = { fns, timer: clock.setInterval(() => fns.forEach((f) => f()), ms) };
        groups.set(ms, g);
      }
      const group = g;
      const entry = () => fn();
      group.fns.add(entry);
      return {
        cancel() {
          if (!group.fns.delete(entry) || group.fns.size > 0) return;
          group.timer.cancel();
          if (groups.get(ms) === group) groups.delete(ms);
        },
      };
    },
  };
}
