import type { Endpoint } from '../../src/core/address.js';
import type { EndReason, FlowCounters, FlowRef, SluiceEvent } from '../../src/observe/events.js';
import type { LiveFlow } from '../../src/observe/live-flows.js';

/** Synthetic flows and events for the sink tests. Wall times are ms since the epoch. */
export const T0 = Date.UTC(2026, 0, 1);
export const upstream: Endpoint = { address: '10.0.0.2', port: 53, family: 4 };

export function flow(id: number, route = 'dns', proto: 'tcp' | 'udp' = 'udp'): FlowRef {
  return { id, route, proto, client: { address: '198.51.100.7', port: 40000 + id, family: 4 } };
}

export function counters(bytesFromClient: number, bytesToClient: number, packetsFromClient = 0, packetsToClient = 0): FlowCounters {
  return { bytesFromClient, bytesToClient, packetsFromClient, packetsToClient };
}

export function started(f: FlowRef, at = T0): SluiceEvent {
  return { type: 'session-started', at, flow: f, upstream, startedAt: at };
}

export function ended(f: FlowRef, c: FlowCounters, at: number, startedAt = T0, reason: EndReason = 'idle-timeout'): SluiceEvent {
  return { type: 'session-ended', at, flow: f, upstream, startedAt, durationMs: at - startedAt, reason, counters: c };
}

export function live(f: FlowRef, c: FlowCounters, startedAt = T0, state = 'open'): LiveFlow {
  return { ...f, ...c, upstream, state, startedAt };
}
