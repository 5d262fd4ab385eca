import { formatHostPort, formatListen } from '../core/address.js';
import type { ConnectConfig } from '../config/expose-config.js';
import type { FlowRef } from '../observe/events.js';
import { pathKindOf, type PeerPathKind } from '../observe/peer-path.js';
import type { RouteRuntime } from '../listen/route.js';
import type { AgentStatus } from './agent-status.js';
import type { PeerFlow } from '../agent/peer-flow.js';
import type { PeerLink } from '../agent/peer-link.js';

/**
 * The peers view of the admin API (`GET /api/peers`, docs/admin.md), `sluice status` and the
 * dashboard: every peer link with what ICE saw and why its path is relayed, and every `connect`
 * listener with its flows. Pure: built from the agent's objects as they are now, nothing kept.
 */
export interface PeerPairView {
  local: string;
  remote: string;
  /** The ICE pair state (RFC 8445 §6.1.2.6). */
  state: string;
  /** `succeeded`, `failed`, `in-progress`, or `not-tried` (frozen or waiting). */
  outcome: 'succeeded' | 'failed' | 'in-progress' | 'not-tried';
  rttMs?: number;
}

export interface PeerLinkView {
  peer: string;
  /** ICE role: the agent whose name sorts first controls. */
  role: 'controlling' | 'controlled';
  /** `peer-offline`: the gateway says the peer agent is not connected to it (its latest answer toward the peer). */
  state: 'idle' | 'connecting' | 'connected' | 'peer-offline';
  path: 'direct' | 'relayed';
  /** Why the path is relayed (or idle), in plain words; null when it is direct. */
  reason: string | null;
  /** Ms from the start of connecting to the first direct path; null until there was one. */
  timeToDirectMs: number | null;
  /** The gateway's latest refusal code toward this peer (peer-offline, not-allowed, ...); null when none. */
  lastRefusal: string | null;
  /** False when every connect entry toward the peer pins `path: relay` (no ICE is run). */
  wantDirect: boolean;
  /** Ms since the link last carried traffic; null when it never did. */
  idleMs: number | null;
  counters: { directSent: number; directReceived: number; directRejected: number; attempts: number; switches: number; staleSignals: number };
  diagnosis: {
    /** The ICE agent's state, `none` when no attempt ran. */
    ice: string;
    /** NAT behaviour inferred from the candidates, per side. */
    nat: { local: string; remote: string };
    candidates: { local: string[]; remote: string[] };
    /** Remote candidates left out because `peerCandidates` does not allow their address class. */
    skipped: string[];
    pairs: PeerPairView[];
    /** The selected pair, `local <-> remote`; null when none. */
    selected: string | null;
  };
}

export interface PeerFlowView {
  /** The flow's tag between this agent and the gateway (0 before PEER_OPEN was sent). */
  tag: number;
  state: 'pending' | 'sent' | 'ok' | 'closed';
  /**
   * Datagrams sent toward the peer's service directly and over the relay, datagrams received,
   * dropped while held, and dropped by the link's send budget (both reasons; docs/connect.md, "A
   * flood through a connect listener").
   */
  counters: { direct: number; relayed: number; received: number; queuedDropped: number; budgetDropped: number };
  /** What carried the datagrams sent so far: `direct`, `relayed`, `mixed`, or `none`. */
  pathKind: PeerPathKind;
}

export interface ConnectRouteView {
  /** The connect entry's name; its route is `connect/<name>` in the access log, records and metrics. */
  name: string;
  route: string;
  proto: 'tcp' | 'udp';
  listen: string;
  /** The bound address (`host:port`), or null when the listener is not bound. */
  address: string | null;
  peer: string;
  service: string;
  /** The configured path: `auto`, `direct` or `relay`. */
  path: 'auto' | 'direct' | 'relay';
  /** The peer link's state, `idle` when there is no link yet (`peer-offline` as in the link's view). */
  state: 'idle' | 'connecting' | 'connected' | 'peer-offline';
  /** The link's current path; null when there is no link (TCP always rides the relay). */
  linkPath: 'direct' | 'relayed' | null;
  /** Sessions or connections open on the listener now. */
  active: number;
  flows: PeerFlowView[];
}

export interface PeersView {
  /** This agent's name; null when this process runs no agent. */
  agent: string | null;
  links: PeerLinkView[];
  connect: ConnectRouteView[];
  /** The agent's signalling counters. */
  counters: { signalsIgnored: number; signalErrors: number; flowsOpened: number; flowsRefused: number } | null;
}


const outcomeOf = (state: string): PeerPairView['outcome'] =>
  state === 'succeeded' ? 'succeeded' : state === 'failed' ? 'failed' : state === 'in-progress' ? 'in-progress' : 'not-tried';

export function peerLinkView(l: PeerLink, now: number): PeerLinkView {
  const d = l.diagnosis();
  return {
    peer: l.peer,
    role: l.controlling ? 'controlling' : 'controlled',
    state: l.shownState,
    path: l.path,
    reason: d.reason ?? null,
    timeToDirectMs: l.timeToDirectMs === undefined ? null : Math.round(l.timeToDirectMs),
    lastRefusal: l.lastRefusal ?? null,
    wantDirect: l.wantDirect,
    idleMs: l.lastActivity === 0 ? null : Math.max(0, now - l.lastActivity),
    counters: { ...l.counters },
    diagnosis: {
      ice: d.ice,
      nat: { local: d.nat.local, remote: d.nat.remote },
      candidates: { local: [...d.localCandidates], remote: [...d.remoteCandidates] },
      skipped: [...d.skippedCandidates],
      pairs: d.pairs.map((p) => ({ local: p.local, remote: p.remote, state: p.state, outcome: outcomeOf(p.state), ...(p.rttMs === undefined ? {} : { rttMs: p.rttMs }) })),
      selected: d.selected ?? null,
    },
  };
}

function flowView(f: PeerFlow): PeerFlowView {
  return { tag: f.tag, state: f.state, counters: { ...f.counters, budgetDropped: f.fair.droppedBudget + f.fair.droppedShare }, pathKind: pathKindOf(f.counters) };
}

/** `connect/<name>` route of a connect entry (connect-listeners.ts names them so). */
const routeOf = (name: string) => `connect/${name}`;

function connectRouteView(agent: AgentStatus, c: ConnectConfig, routes: ReadonlyMap<string, RouteRuntime>, flows: readonly PeerFlow[]): ConnectRouteView {
  const route = routeOf(c.name);
  const r = routes.get(route);
  const link = agent.peers.links.get(c.peer);
  const address = r ? formatHostPort(r.local.address, r.local.port) : null;
  return {
    name: c.name,
    route,
    proto: c.listen.transport,
    listen: formatListen(c.listen),
    address,
    peer: c.peer,
    service: c.service,
    path: c.path,
    state: link?.shownState ?? 'idle',
    linkPath: link ? link.path : null,
    active: r?.active ?? 0,
    flows: flows.filter((f) => f.target.name === c.name).map(flowView),
  };
}

/**
 * Folds in what the native batch forwarded for the agent's peer flows (their `direct`, `relayed`
 * and `received` counters, the links' direct counters): reading a connect route's sessions does,
 * so views and scrapes are exact, not a sweep behind.
 */
export function foldPeerFlows(agent: AgentStatus): void {
  for (const r of agent.connectRoutes) r.sessions();
}

/** The view of one agent (docs/admin.md, `GET /api/peers`). `now` is the agent clock's `now()`. */
export function peerView(agent: AgentStatus | undefined, now: number): PeersView {
  if (!agent) return { agent: null, links: [], connect: [], counters: null };
  const routes = new Map(agent.connectRoutes.map((r) => [r.name, r] as const));
  foldPeerFlows(agent);
  const flows = agent.peers.flows;
  return {
    agent: agent.config.name,
    links: [...agent.peers.links.values()].sort((a, b) => a.peer.localeCompare(b.peer)).map((l) => peerLinkView(l, now)),
    connect: agent.config.connect.map((c) => connectRouteView(agent, c, routes, flows)),
    counters: { ...agent.peers.counters },
  };
}

/** What the gateway counts of signalling and relayed peer flows (src/gateway/counters.ts), as /api/peers shows it. */
export interface GatewayPeerSource {
  readonly counters: {
    readonly signalsForwarded: number;
    readonly signalsRefused: Readonly<Partial<Record<string, number>>>;
    readonly peerFlows: Readonly<Record<string, Readonly<Partial<Record<string, number>>>>>;
    readonly peerDatagramsToService: number;
    readonly peerDatagramsToOpener: number;
    readonly peerDatagramsDropped: number;
    readonly peerBytesToService: number;
    readonly peerBytesToOpener: number;
    readonly peerStreamBytesToService: number;
    readonly peerStreamBytesToOpener: number;
  };
  readonly peers: { flowCounts(): Readonly<Record<string, number>> };
}

export interface GatewayPeersView {
  signals: { forwarded: number; refused: Record<string, number> };
  /** PEER_OPEN outcomes by transport and result (ok, a refusal code, dial-failed, ...). */
  peerFlows: Record<string, Record<string, number>>;
  /** Relayed peer flows open now, by transport. */
  openFlows: Record<string, number>;
  relayedDatagrams: { toService: number; toOpener: number; toOpenerDropped: number };
  relayedBytes: { udp: { toService: number; toOpener: number }; tcp: { toService: number; toOpener: number } };
}

const dense = (r: Readonly<Partial<Record<string, number>>>): Record<string, number> =>
  Object.fromEntries(Object.entries(r).filter((e): e is [string, number] => e[1] !== undefined));

export function gatewayPeersView(g: GatewayPeerSource): GatewayPeersView {
  const c = g.counters;
  return {
    signals: { forwarded: c.signalsForwarded, refused: dense(c.signalsRefused) },
    peerFlows: Object.fromEntries(Object.entries(c.peerFlows).map(([t, r]) => [t, dense(r)])),
    openFlows: { ...g.peers.flowCounts() },
    relayedDatagrams: { toService: c.peerDatagramsToService, toOpener: c.peerDatagramsToOpener, toOpenerDropped: c.peerDatagramsDropped },
    relayedBytes: {
      udp: { toService: c.peerBytesToService, toOpener: c.peerBytesToOpener },
      tcp: { toService: c.peerStreamBytesToService, toOpener: c.peerStreamBytesToOpener },
    },
  };
}

/** A short summary for /api/health: links by state and path. */
export function peerSummary(agent: AgentStatus | undefined): { links: number; connecting: number; direct: number; relayed: number; connectListeners: number } | undefined {
  if (!agent) return undefined;
  let connecting = 0;
  let direct = 0;
  let relayed = 0;
  for (const l of agent.peers.links.values()) {
    if (l.state === 'connecting') connecting++;
    else if (l.state === 'connected') l.path === 'direct' ? direct++ : relayed++;
  }
  return { links: agent.peers.links.size, connecting, direct, relayed, connectListeners: agent.connectRoutes.length };
}

/**
 * The peer flow that carries the UDP session `flow` of a connect listener, while it is open:
 * its counters keep counting and stay readable after it closes, so a record keeps a reference
 * from the session's start to its end. Undefined for other sessions.
 */
export function peerFlowOf(agent: AgentStatus | undefined, flow: FlowRef): PeerFlow | undefined {
  return agent?.peers.flowOf(flow);
}
