import type { Endpoint } from '../../core/address.js';
import type { FlowCounters } from '../../observe/events.js';

/** How often live sessions' counters are read for `bytesPer` rules (on the injected clock). */
export const BYTE_SAMPLE_MS = 1000;
/** A `bytesPer` window is counted in this many slots: exact to 1/16th of the window. */
export const BYTE_SLOTS = 16;

/** What the meter reads of a live session (SessionInfo satisfies it). */
export interface MeteredFlow {
  readonly id: number;
  readonly route: string;
  readonly client: Endpoint;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

/** Marks a flow whose end was counted while it is still listed as live. */
const ENDED = -1;

/**
 * Turns session counters into byte deltas per flow, for `bytesPer` ban rules: every
 * BYTE_SAMPLE_MS the live sessions' counters are read (as the metrics scrape does) and what moved
 * since the last read is reported; a session's end reports its final counters less what was
 * already reported. Nothing runs per datagram: the datapaths count bytes already. Memory is one
 * number per live session, and per session ended since the last sample.
 */
export class ByteMeter {
  #seen = new Map<number, number>();

  constructor(private readonly report: (route: string, client: Endpoint, bytes: number) => void) {}

  /** Reads the live flows' counters and reports what each moved since the last read. */
  sample(flows: Iterable<MeteredFlow>): void {
    const next = new Map<number, number>();
    for (const f of flows) {
      const before = this.#seen.get(f.id) ?? 0;
      if (before === ENDED) {
        next.set(f.id, ENDED);
        continue;
      }
      const total = f.bytesFromClient + f.bytesToClient;
      next.set(f.id, total);
      if (total > before) this.report(f.route, f.client, total - before);
    }
    this.#seen = next;
  }

  /** A session ended with `counters`: reports what the samples had not. */
  ended(flow: Pick<MeteredFlow, 'id' | 'route' | 'client'>, counters: FlowCounters): void {
    const before = this.#seen.get(flow.id) ?? 0;
    if (before === ENDED) return;
    // Until the next sample drops it: a route may still list a closing session.
    this.#seen.set(flow.id, ENDED);
    const total = counters.bytesFromClient + counters.bytesToClient;
    if (total > before) this.report(flow.route, flow.client, total - before);
  }

  /** Forgets every flow (no `bytesPer` rule left). */
  clear(): void {
    this.#seen.clear();
  }
}

/**
 * Bytes of one source under one rule over a sliding window of BYTE_SLOTS slots: a slot is reset
 * when time comes round to it again, so the sum covers the last 15/16 to 16/16 of the window.
 */
export class ByteWindow {
  readonly #counts = new Float64Array(BYTE_SLOTS);
  readonly #stamps = new Float64Array(BYTE_SLOTS).fill(-1);

  constructor(readonly windowMs: number) {}

  /** Adds `bytes` at monotonic time `now`; returns the sum over the window. */
  add(now: number, bytes: number): number {
    const slot = Math.floor(now / Math.max(1, this.windowMs / BYTE_SLOTS));
    const i = slot % BYTE_SLOTS;
    if (this.#stamps[i] !== slot) {
      this.#stamps[i] = slot;
      this.#counts[i] = 0;
    }
    this.#counts[i]! += bytes;
    let sum = 0;
    for (let j = 0; j < BYTE_SLOTS; j++) {
      const s = this.#stamps[j]!;
      if (s > slot - BYTE_SLOTS && s <= slot) sum += this.#counts[j]!;
    }
    return sum;
  }
}
