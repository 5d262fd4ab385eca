import type { Transport } from '../core/address.js';
import type { FlowCounters } from './events.js';
import type { LiveCounters } from './live-flows.js';

interface Counted extends FlowCounters {
  /** The poll generation that last saw the flow alive. */
  seen: number;
}

/** Receives what a route's flows added: the sum per route and protocol. */
export type TrafficSink = (route: string, proto: Transport, d: FlowCounters) => void;

/**
 * Counts each flow's bytes and packets once though they are read many times: at each poll the
 * live flows' counters are compared with what was already counted for that flow id, and at the
 * flow's end its last counters give the rest. A flow's counters only grow; a smaller reading
 * adds nothing. A flow missing from two polls in a row has ended: if its end never comes (the
 * reader was detached meanwhile), it is forgotten, so the table cannot grow without bound.
 */
export class FlowTally {
  readonly #counted = new Map<number, Counted>();
  #generation = 0;

  /** Flows remembered as counted. */
  get size(): number {
    return this.#counted.size;
  }

  /** Counts what the live flows added since the last poll, summed per route and protocol into `sink`. */
  poll(flows: Iterable<LiveCounters>, sink: TrafficSink): void {
    const gen = ++this.#generation;
    // Summed per series first: one label lookup per route, not four per flow.
    const sums = new Map<string, { route: string; proto: Transport; d: FlowCounters }>();
    for (const f of flows) {
      const d = added(f, this.#counted.get(f.id));
      this.#counted.set(f.id, {
        bytesFromClient: f.bytesFromClient,
        packetsFromClient: f.packetsFromClient,
        bytesToClient: f.bytesToClient,
        packetsToClient: f.packetsToClient,
        seen: gen,
      });
      const k = `${f.route}\0${f.proto}`;
      const s = sums.get(k);
      if (s) accumulate(s.d, d);
      else sums.set(k, { route: f.route, proto: f.proto, d });
    }
    for (const s of sums.values()) sink(s.route, s.proto, s.d);
    for (const [id, c] of this.#counted) if (c.seen < gen - 1) this.#counted.delete(id);
  }

  /** Flow `id` ended with `last`: what it added since it was last counted; it is forgotten. */
  ended(id: number, last: FlowCounters): FlowCounters {
    const prev = this.#counted.get(id);
    this.#counted.delete(id);
    return added(last, prev);
  }
}

function added(now: FlowCounters, prev: FlowCounters | undefined): FlowCounters {
  return {
    bytesFromClient: Math.max(0, now.bytesFromClient - (prev?.bytesFromClient ?? 0)),
    packetsFromClient: Math.max(0, now.packetsFromClient - (prev?.packetsFromClient ?? 0)),
    bytesToClient: Math.max(0, now.bytesToClient - (prev?.bytesToClient ?? 0)),
    packetsToClient: Math.max(0, now.packetsToClient - (prev?.packetsToClient ?? 0)),
  };
}

function accumulate(into: FlowCounters, d: FlowCounters): void {
  into.bytesFromClient += d.bytesFromClient;
  into.packetsFromClient += d.packetsFromClient;
  into.bytesToClient += d.bytesToClient;
  into.packetsToClient += d.packetsToClient;
}
