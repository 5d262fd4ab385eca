import type { RouteRuntime } from '../listen/route.js';
import { zeroCounters, type FlowCounters, type Sink } from '../observe/events.js';

/** Route names whose ended traffic is kept at most; past it, names no current route has are dropped. */
const MAX_ROUTES_KEPT = 4096;

/**
 * Per-route traffic for `/api/routes`: the counters of the route's ended flows (from
 * `session-ended`) plus its open flows' counters so far, read when asked. Keyed by route name, so
 * a listener rebuilt by a reload keeps counting under its name. Bounded: the names are the
 * config's routes, connect listeners and published services; past MAX_ROUTES_KEPT the names of
 * routes that no longer exist are forgotten.
 */
export class RouteTraffic {
  readonly #ended = new Map<string, FlowCounters>();

  constructor(private readonly routes: () => readonly RouteRuntime[]) {}

  readonly sink: Sink = (e) => {
    if (e.type !== 'session-ended') return;
    let t = this.#ended.get(e.flow.route);
    if (!t) {
      if (this.#ended.size >= MAX_ROUTES_KEPT) this.#prune();
      this.#ended.set(e.flow.route, (t = zeroCounters()));
    }
    const c = e.counters;
    t.bytesFromClient += c.bytesFromClient;
    t.bytesToClient += c.bytesToClient;
    t.packetsFromClient += c.packetsFromClient;
    t.packetsToClient += c.packetsToClient;
  };

  /** Route names whose ended traffic is kept now. */
  get size(): number {
    return this.#ended.size;
  }

  /** Ended plus live counters of `r`'s name. Copies its sessions (as /api/sessions does). */
  of(r: RouteRuntime): FlowCounters {
    const t = { ...(this.#ended.get(r.name) ?? zeroCounters()) };
    for (const s of r.sessions()) {
      t.bytesFromClient += s.bytesFromClient;
      t.bytesToClient += s.bytesToClient;
      t.packetsFromClient += s.packetsFromClient;
      t.packetsToClient += s.packetsToClient;
    }
    return t;
  }

  #prune(): void {
    const live = new Set(this.routes().map((r) => r.name));
    for (const name of this.#ended.keys()) if (!live.has(name)) this.#ended.delete(name);
  }
}
