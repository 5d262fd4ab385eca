import { formatHostPort, formatListen } from '../core/address.js';
import type { AgentStatus } from './data-path-status.js';

/**
 * The agent's own status (`/api/health` `agent`, `sluice status`, docs/admin.md): its gateway
 * connection and what it published there. Pure: built from the agent as it is now.
 */
export interface AgentStatusView {
  name: string;
  /** The gateway as configured (`agent.gateway`). */
  gateway: string;
  /** connecting: an attempt runs; connected: authenticated; waiting: backing off before the next attempt. */
  state: 'connecting' | 'connected' | 'waiting' | 'closed';
  /** When the current connection authenticated (ISO time); null while not connected. */
  connectedSince: string | null;
  /** The last failed attempt or lost connection: a stable `reason` (wrong-token, certificate-mismatch, lost, ...). */
  lastError: { reason: string; message: string; time: string } | null;
  /** How exposed-service datagrams travel to the gateway: sealed UDP, or over the TLS connection. */
  datagrams: 'udp' | 'tls';
  services: AgentServiceView[];
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
    services: agent.services().map((s): AgentServiceView => {
      const r = s.config.remote;
      const state = !r ? 'peers-only' : s.refusal ? 'refused' : connected && s.bound ? 'published' : 'pending';
      return {
        name: s.config.name,
        proto: s.config.transport,
        local: formatHostPort(s.config.local.host, s.config.local.port),
        remote: r ? formatListen(r) : null,
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
