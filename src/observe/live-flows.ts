import type { Endpoint } from '../core/address.js';
import type { FlowCounters, FlowRef } from './events.js';

/**
 * A session or connection that is still open, with its counters so far, as the sinks poll it.
 * `SessionInfo` (listen/route.ts) satisfies it, so the composition root can pass
 * `() => node.routes().flatMap((r) => r.sessions())`.
 */
export interface LiveFlow extends FlowRef, FlowCounters {
  readonly upstream: Endpoint | undefined;
  /** Only 'open' flows (dial completed, `session-started` sent) get flow-record updates. */
  readonly state: string;
  /** Wall-clock milliseconds since the epoch, like `session-ended.startedAt`. */
  readonly startedAt: number;
}

/** Returns the flows open right now. Called on the sinks' own schedule (a scrape, an update tick). */
export type LiveFlows = () => Iterable<LiveFlow>;

/** What the metrics sink needs of a live flow: which series it belongs to and its counters. */
export type LiveCounters = Pick<LiveFlow, 'id' | 'route' | 'proto'> & FlowCounters;
