import type { FlowRef } from './events.js';

/** What carried a connect session's datagrams toward the peer (docs/records.md). */
export type PeerPathKind = 'direct' | 'relayed' | 'mixed' | 'none';

/** The counters of the peer flow behind one UDP session of a connect listener (src/agent/peer-flow.ts). */
export interface PeerFlowCounts {
  readonly counters: { readonly direct: number; readonly relayed: number };
}

/** Finds the peer flow of a connect session while it is open; undefined for any other session. */
export type PeerFlowLookup = (flow: FlowRef) => PeerFlowCounts | undefined;

/** Fields the access log `end` line and flow records add for sessions of `connect/` routes. */
export interface PeerPathFields {
  peerPath: PeerPathKind;
  /** UDP only: datagrams sent toward the peer's service directly and through the gateway. */
  peerDatagramsDirect?: number;
  peerDatagramsRelayed?: number;
}

export function pathKindOf(c: { readonly direct: number; readonly relayed: number }): PeerPathKind {
  if (c.direct > 0) return c.relayed > 0 ? 'mixed' : 'direct';
  return c.relayed > 0 ? 'relayed' : 'none';
}

export const isConnectRoute = (route: string) => route.startsWith('connect/');

/** Open sessions remembered at most; beyond it the oldest are forgotten (their end lines lack the fields). */
const MAX_TRACKED = 65_536;

/**
 * Keeps, from a connect session's start to its end, a reference to its peer flow's counters (the
 * agent forgets the flow when it closes, before `session-ended` is emitted). TCP sessions of
 * connect listeners always ride the gateway relay, so they are `relayed` without a lookup.
 * One tracker per sink: each forgets a session at its own `session-ended`.
 */
export function peerPathTracker(lookup: PeerFlowLookup | undefined) {
  const open = new Map<number, PeerFlowCounts>();
  const fieldsOf = (flow: FlowRef, f: PeerFlowCounts | undefined): PeerPathFields | undefined => {
    if (!isConnectRoute(flow.route)) return undefined;
    if (flow.proto === 'tcp') return { peerPath: 'relayed' };
    if (!f) return undefined;
    const c = f.counters;
    return { peerPath: pathKindOf(c), peerDatagramsDirect: c.direct, peerDatagramsRelayed: c.relayed };
  };
  return {
    started(flow: FlowRef): void {
      if (!lookup || flow.proto !== 'udp' || !isConnectRoute(flow.route)) return;
      const f = lookup(flow);
      if (!f) return;
      if (open.size >= MAX_TRACKED) open.delete(open.keys().next().value!);
      open.set(flow.id, f);
    },
    /** The fields so far (update records). */
    current(flow: FlowRef): PeerPathFields | undefined {
      return isConnectRoute(flow.route) ? fieldsOf(flow, open.get(flow.id) ?? lookup?.(flow)) : undefined;
    },
    /** The final fields, and the session is forgotten. */
    ended(flow: FlowRef): PeerPathFields | undefined {
      if (!isConnectRoute(flow.route)) return undefined;
      const f = open.get(flow.id);
      open.delete(flow.id);
      return fieldsOf(flow, f);
    },
    get size(): number {
      return open.size;
    },
  };
}
