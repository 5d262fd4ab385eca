import { formatHostPort } from '../core/address.js';
import { formatExposeLocal, formatExposeRemote } from '../config/expose-remote.js';
import type { AgentStatus } from './agent-status.js';

/**
 * The agent's own status (`/api/health` `agent`, `sluice status`, docs/admin.md): its gateway
 * connection and what it published there. Pure: built from the agent as it is now.
 */
export interface AgentStatusView {
  name: string;
  /** The gateway as configured (`agent.gateway`; with `agent.gateways`, the first). */
  gateway: string;
  /**
   * connecting: an attempt runs; connected: authenticated; waiting: backing off before the next
   * attempt. With several gateways: connected while any is, else connecting while any attempt runs.
   */
  state: 'connecting' | 'connected' | 'waiting' | 'standby' | 'closed';
  /** When the current connection authenticated (ISO time); null while not connected. */
  connectedSince: string | null;
  /** The last failed attempt or lost connection: a stable `reason` (wrong-token, certificate-mismatch, lost, ...). */
  lastError: { reason: string; message: string; time: string } | null;
  /** How exposed-service datagrams travel to the gateway: sealed UDP, or over the TLS connection. */
  datagrams: 'udp' | 'tls';
  services: AgentServiceView[];
  /** Each gateway the agent is homed on (one with `agent.gateway`), in config order (docs/fleet.md). */
  gateways: AgentGatewayView[];
}

/** One gateway of the agent: its own connection, datagram path and publications. */
export interface AgentGatewayView {
  /** As configured (`host:port`), or the address a name resolved to (one gateway per address). */
  gateway: string;
  /** The address of the latest attempt (after resolving); null before the first. */
  address: string | null;
  /** As the agent's `state`, plus standby: past `agent.homes`, held back until a held gateway is lost. */
  state: 'connecting' | 'connected' | 'waiting' | 'standby' | 'closed';
  connectedSince: string | null;
  lastError: { reason: string; message: string; time: string } | null;
  datagrams: 'udp' | 'tls';
  /** Services with a public listener on this gateway now. */
  published: number;
  /** Where this gateway listens for each published service (`IP:PORT`), by service name. */
  bound: Record<string, string>;
  /** UDP sessions toward local services that came through this gateway. */
  udpSessions: number;
}

export interface AgentServiceView {
  name: string;
  proto: 'tcp' | 'udp';
  /** The local service (`expose.<name>.local`). */
  local: string;
  /** The public listener asked for (`remote`); null for a service offered to peers only. */
  remote: string | null;
  /**
   * published: the gateway listens for it now (`bound`); pending: not answered on this connection
   * (or not connected); refused: the gateway said no (`refusal`); peers-only: no public listener.
   */
  state: 'published' | 'pending' | 'refused' | 'peers-only';
  /** The public address the gateway bound (the real port when `remote` asked for 0). */
  bound: string | null;
  refusal: { code: string; message: string } | null;
  /** Agents that may reach it over a peer path. */
  peers: string[];
  /** A pool member only: its group (docs/pools.md, "Agent pools"). */
  group?: string;
  /** A pool member with `health:` only: the agent's latest verdict on its local service; null before the first. */
  localHealth?: { up: boolean; message: string } | null;
}

export function agentStatusView(agent: AgentStatus): AgentStatusView {
  const c = agent.config;
  const connected = agent.state === 'connected';
  const last = agent.lastDisconnect;
  return {
    name: c.name,
    gateway: formatHostPort(c.gateway.host, c.gateway.port),
    state: agent.state,
    connectedSince: connected && agent.connectedSince !== undefined ? new Date(agent.connectedSince).toISOString() : null,
    lastError: last ? { reason: last.failure, message: last.message, time: new Date(last.at).toISOString() } : null,
    datagrams: agent.datagramMode,
    gateways: agent.homes.map((h): AgentGatewayView => {
      const up = h.state === 'connected';
      const l = h.lastDisconnect;
      const live = up ? h.local.services.filter((s) => s.config.remote && s.bound && !s.refusal) : [];
      return {
        gateway: h.label,
        address: h.address ?? null,
        state: h.state,
        connectedSince: up && h.connectedSince !== undefined ? new Date(h.connectedSince).toISOString() : null,
        lastError: l ? { reason: l.failure, message: l.message, time: new Date(l.at).toISOString() } : null,
        datagrams: h.path.mode,
        published: live.length,
        bound: Object.fromEntries(live.map((s) => [s.config.name, formatHostPort(s.bound!.address, s.bound!.port)])),
        udpSessions: h.local.activeCounts().reduce((n, c) => n + c.active, 0),
      };
    }),
    services: agent.services().map((s): AgentServiceView => {
      const r = s.config.remote;
      const state = !r ? 'peers-only' : s.refusal ? 'refused' : connected && s.bound ? 'published' : 'pending';
      return {
        name: s.config.name,
        proto: s.config.transport,
        local: formatExposeLocal(s.config),
        remote: formatExposeRemote(s.config),
        state,
        bound: state === 'published' && s.bound ? formatHostPort(s.bound.address, s.bound.port) : null,
        refusal: s.refusal ? { code: s.refusal.code, message: s.refusal.message } : null,
        peers: [...s.config.peers],
        ...poolFields(s),
      };
    }),
  };
}

/** The pool part of a service's view: absent for a service of its own. */
function poolFields(s: ReturnType<AgentStatus['services']>[number]): Pick<AgentServiceView, 'group' | 'localHealth'> {
  const pool = s.config.pool;
  if (!pool) return {};
  const r = s.localHealth?.report;
  return { group: pool.group, ...(pool.health ? { localHealth: r ? { up: r.up, message: r.message } : null } : {}) };
}
