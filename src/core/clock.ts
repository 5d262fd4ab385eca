import { performance } from 'node:perf_hooks';

/**
 * Time as a dependency. Everything that waits (idle sweeps, dial timeouts, retransmissions,
 * keepalives) reads time from a Clock so tests can move it by hand instead of sleeping.
 */
export interface Timer {
  /** Stops the timer; calling it twice is harmless. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall time). */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for records people read. */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  setInterval(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  // perf_hooks' object, not the global: the global `performance` is a lazy accessor that runs a
  // getter at every read (about 10 ns a call, one or more calls a connection).
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref?.();
    return { cancel: () => clearInterval(t) };
  },
};

/**
 * AbortSignal.timeout on a Clock: `signal` aborts with a `TimeoutError` DOMException (as the
 * built-in's does) once `ms` have passed on `clock`; `cancel` stops the timer when the work ended
 * first (the built-in's timer cannot be stopped).
 */
export function timeoutSignal(clock: Clock, ms: number): { readonly signal: AbortSignal; cancel(): void } {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(new DOMException(`timed out after ${ms}ms`, 'TimeoutError')), ms);
  return { signal: controller.signal, cancel: () => timer.cancel() };
}
