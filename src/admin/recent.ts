import type { Sink, SluiceEvent } from '../observe/events.js';
import { counterFields, flowFields, type FlowFields } from '../observe/record-fields.js';
import type { FlowCounters } from '../observe/events.js';
import { Ring } from './ring.js';

/** An ended session as the API lists it: the access log's `end` line, field for field. */
export interface RecentFlow extends FlowFields, FlowCounters {
  time: string;
  startTime: string;
  durationMs: number;
  reason: string;
}

/** A refused client as the API lists it: the access log's `reject` line without `suppressed`. */
export interface RecentDenial {
  time: string;
  route: string;
  proto: 'tcp' | 'udp';
  clientAddr: string;
  clientPort: number;
  reason: string;
  detail?: string;
  observeOnly?: boolean;
}

/** Items each ring keeps; the API returns at most this many. */
export const RECENT_CAPACITY = 200;

/**
 * The admin API's memory of the recent past: the last ended sessions and the last refused
 * clients, each in a fixed ring. Cheap per event (one small object); a denial flood only
 * overwrites older denials.
 */
export class RecentActivity {
  readonly flows = new Ring<RecentFlow>(RECENT_CAPACITY);
  readonly denials = new Ring<RecentDenial>(RECENT_CAPACITY);

  readonly sink: Sink = (e: SluiceEvent) => {
    if (e.type === 'session-ended') {
      this.flows.push({
        time: iso(e.at),
        ...flowFields(e.flow, e.upstream),
        startTime: iso(e.startedAt),
        durationMs: e.durationMs,
        ...counterFields(e.counters),
        reason: e.reason,
      });
    } else if (e.type === 'session-rejected') {
      const d: RecentDenial = { time: iso(e.at), route: e.route, proto: e.proto, clientAddr: e.client.address, clientPort: e.client.port, reason: e.reason };
      if (e.detail) d.detail = e.detail;
      if (e.observeOnly) d.observeOnly = true;
      this.denials.push(d);
    }
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
