import { Counter, Gauge, type Registry } from 'prom-client';
import type { AgentStatus } from './agent-status.js';
import type { PeerFlow } from '../agent/peer-flow.js';
import type { FlowRef, Sink } from '../observe/events.js';
import { isConnectRoute } from '../observe/peer-path.js';
import { foldPeerFlows } from './peer-view.js';

/** Peer flows remembered between scrapes at most; closed ones are counted and forgotten first. */
const MAX_TRACKED_FLOWS = 65_536;

/**
 * Metrics of the agent's peer links and connect listeners (docs/metrics.md), read from the
 * agent's objects at scrape time: nothing is done per datagram. `sluice_peer_path_changes_total`
 * is counted from `peer-path` events in metrics.ts.
 *
 * Datagrams per connect route come from each peer flow's counters: a flow is remembered from the
 * session's start (the returned sink) or the first scrape that sees it, counted by difference at
 * every scrape, and forgotten once closed and counted. A registry without a scrape still stays
 * bounded: past MAX_TRACKED_FLOWS the closed flows are counted and dropped at once.
 */
export function registerPeerMetrics(registry: Registry, read: () => AgentStatus | undefined, lookup: (flow: FlowRef) => PeerFlow | undefined): { sink: Sink } {
  const registers = [registry];
  const counted = new Map<PeerFlow, { direct: number; relayed: number; received: number }>();

  const datagrams = new Counter({
    name: 'sluice_peer_datagrams_total',
    help: 'Datagrams of connect listeners toward the peer, by route and path (direct or relayed through the gateway); counted at scrape time',
    labelNames: ['route', 'path'] as const,
    registers,
    collect: () => poll(),
  });
  const received = new Counter({
    name: 'sluice_peer_datagrams_received_total',
    help: 'Datagrams of connect listeners from the peer (either path), by route; counted at scrape time',
    labelNames: ['route'] as const,
    registers,
    collect: () => poll(),
  });

  let polledThisTurn = false;
  const countOne = (f: PeerFlow) => {
    const seen = counted.get(f) ?? { direct: 0, relayed: 0, received: 0 };
    const c = f.counters;
    const route = `connect/${f.target.name}`;
    if (c.direct > seen.direct) datagrams.inc({ route, path: 'direct' }, c.direct - seen.direct);
    if (c.relayed > seen.relayed) datagrams.inc({ route, path: 'relayed' }, c.relayed - seen.relayed);
    if (c.received > seen.received) received.inc({ route }, c.received - seen.received);
    if (f.state === 'closed') counted.delete(f);
    else counted.set(f, { direct: c.direct, relayed: c.relayed, received: c.received });
  };
  function poll(): void {
    if (polledThisTurn) return;
    polledThisTurn = true;
    queueMicrotask(() => (polledThisTurn = false));
    const agent = read();
    if (agent) foldPeerFlows(agent);
    if (agent) for (const f of agent.peers.flows) if (!counted.has(f)) counted.set(f, { direct: 0, relayed: 0, received: 0 });
    for (const f of [...counted.keys()]) countOne(f);
  }

  new Gauge({
    name: 'sluice_peer_links',
    help: 'Peer links of this agent: 1 for each link at its current state (idle, connecting, connected) and path (direct, relayed)',
    labelNames: ['peer', 'state', 'path'] as const,
    registers,
    collect() {
      this.reset();
      const agent = read();
      if (agent) for (const l of agent.peers.links.values()) this.set({ peer: l.peer, state: l.shownState, path: l.path }, 1);
    },
  });
  new Gauge({
    name: 'sluice_peer_time_to_direct_seconds',
    help: "Time from a peer link's start of connecting to its first direct path (the latest connect); absent until there was one",
    labelNames: ['peer'] as const,
    registers,
    collect() {
      this.reset();
      const agent = read();
      if (!agent) return;
      for (const l of agent.peers.links.values()) {
        const ms = l.timeToDirectMs;
        if (ms !== undefined) this.set({ peer: l.peer }, ms / 1000);
      }
    },
  });
  new Counter({
    name: 'sluice_peer_direct_datagrams_total',
    help: 'Sealed datagrams on the direct paths of a peer link, by direction (sent, received, rejected: failed to open)',
    labelNames: ['peer', 'direction'] as const,
    registers,
    collect() {
      this.reset();
      const agent = read();
      if (!agent) return;
      foldPeerFlows(agent);
      for (const l of agent.peers.links.values()) {
        const c = l.counters;
        if (c.directSent > 0) this.inc({ peer: l.peer, direction: 'sent' }, c.directSent);
        if (c.directReceived > 0) this.inc({ peer: l.peer, direction: 'received' }, c.directReceived);
        if (c.directRejected > 0) this.inc({ peer: l.peer, direction: 'rejected' }, c.directRejected);
      }
    },
  });

  const sink: Sink = (e) => {
    if (e.type !== 'session-started' || e.flow.proto !== 'udp' || !isConnectRoute(e.flow.route)) return;
    const f = lookup(e.flow);
    if (!f || counted.has(f)) return;
    if (counted.size >= MAX_TRACKED_FLOWS) for (const g of [...counted.keys()]) if (g.state === 'closed') countOne(g);
    if (counted.size < MAX_TRACKED_FLOWS) counted.set(f, { direct: 0, relayed: 0, received: 0 });
  };
  return { sink };
}
