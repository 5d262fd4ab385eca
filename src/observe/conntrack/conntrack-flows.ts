import type { DirectionOf } from './direction.js';
import type { ConntrackEvent, ConntrackProto } from './event.js';
import { conntrackFlowRecord, type ConntrackFlowRecord } from './flow-record.js';

export interface ConntrackFlowsOptions {
  readonly directionOf: DirectionOf;
  /** Start times remembered for end records (oldest forgotten first); 0 remembers none. */
  readonly maxTracked: number;
  /** This process's instance UUID; flow UUIDs are derived under it. */
  readonly instanceId: string;
  /** Wall ms, read only for an event without a kernel timestamp. */
  readonly wallNow: () => number;
}

/**
 * What one parsed event became: its record, or why there is none (`update`: no update records;
 * `skipped-protocol`: not TCP, UDP or ICMP; `skipped-direction`: neither end is a local network).
 */
export type ConntrackFlowOutcome = ConntrackFlowRecord | 'update' | 'skipped-protocol' | 'skipped-direction';

/**
 * Turns conntrack events into flow records (docs/conntrack.md): NEW becomes `start`, DESTROY `end`.
 * The end record's start time is the NEW event's time when this table saw it, else the kernel's
 * own age of the entry (`delta-time`, with `nf_conntrack_timestamp`), else the end time itself.
 * The table keeps at most `maxTracked` start times, forgetting the oldest first, so a flood of
 * NEW events without DESTROY cannot grow it. No I/O and no timers: the caller writes the records.
 */
export class ConntrackFlows {
  /** conntrack id → wall ms of its NEW event. Insertion-ordered. */
  readonly #starts = new Map<number, number>();

  constructor(private readonly opts: ConntrackFlowsOptions) {}

  /** Start times held now. */
  get tracked(): number {
    return this.#starts.size;
  }

  onEvent(ev: ConntrackEvent): ConntrackFlowOutcome {
    if (ev.type === 'update') return 'update';
    if (ev.proto === 'other') return 'skipped-protocol';
    const direction = this.opts.directionOf(ev);
    if (!direction) return 'skipped-direction';
    const time = ev.timestampMs ?? this.opts.wallNow();
    let startedAt = time;
    if (ev.type === 'new') {
      this.#starts.delete(ev.id);
      if (this.#starts.size >= this.opts.maxTracked) this.#starts.delete(this.#starts.keys().next().value!);
      if (this.opts.maxTracked > 0) this.#starts.set(ev.id, time);
    } else {
      const seen = this.#starts.get(ev.id);
      this.#starts.delete(ev.id);
      // Not seen (started before this run, or forgotten): the kernel's own age, if it keeps one.
      startedAt = seen ?? (ev.deltaTimeS !== undefined ? time - ev.deltaTimeS * 1000 : time);
    }
    return conntrackFlowRecord(ev as ConntrackEvent & { proto: ConntrackProto }, {
      instanceId: this.opts.instanceId,
      direction,
      time,
      startedAt: Math.min(startedAt, time),
    });
  }
}
