import { formatHostPort } from '../core/address.js';
import { formatListenSpan } from '../config/port-span.js';
import { formatDurationMs } from '../core/duration.js';
import { formatByteRate } from '../core/byte-rate.js';
import type { BandwidthSettings, RouteOrigin } from '../config/types.js';
import type { RouteRuntime, SessionInfo } from '../listen/route.js';
import type { ListenerConfig } from '../session/session-policy.js';
import { zeroCounters, type FlowCounters } from '../observe/events.js';
import type { PoolView } from '../upstream/pool/pool.js';

/**
 * The JSON shapes of the admin API (docs/admin.md). Field names follow the access log and flow
 * records (`flowId`, `clientAddr`, `bytesFromClient`, ...), so one vocabulary serves all of them.
 */
/**
 * Which listener a route is: `route` (the config's, or container labels'), `published` (an
 * agent's service that this gateway listens for), `connect` (this agent's connect listener).
 */
export type RouteKind = 'route' | 'published' | 'connect';

/**
 * `up`: bound and serving. A published service is `agent-detached` while its agent's control
 * connection is down within the resume grace (UDP may still flow; TCP cannot), and `stale` after a
 * resume until the agent publishes it again (it closes if the agent does not).
 */
export type RouteState = 'up' | 'agent-detached' | 'stale';

/** What a route is beyond its listener; routes without one are plain `route`s that are `up`. */
export interface RouteAbout {
  readonly kind: RouteKind;
  /** The agent a published service belongs to. */
  readonly agent?: string;
  readonly state?: RouteState;
  /** A pooled route's members and their health (docs/pools.md). */
  readonly pool?: PoolView;
}

export interface RouteView extends FlowCounters {
  name: string;
  kind: RouteKind;
  /** Published services only: the agent whose service it is. */
  agent?: string;
  proto: 'tcp' | 'udp';
  state: RouteState;
  listen: string;
  /** The bound address (the real port when `listen` said 0). */
  address: string;
  upstream: string;
  active: number;
  settings: Record<string, unknown>;
  /** Where a discovered route came from (container labels); absent for config-file routes. */
  origin?: RouteOrigin;
  /** A pooled route: balance, failover, refusals and each member's health, checks and traffic (docs/pools.md). */
  pool?: PoolView;
}

export interface SessionView extends FlowCounters {
  flowId: number;
  route: string;
  proto: 'tcp' | 'udp';
  state: string;
  clientAddr: string;
  clientPort: number;
  upstreamAddr?: string;
  upstreamPort?: number;
  /** The port the client reached, on a route whose listen is a port range. */
  listenPort?: number;
  startTime: string;
  ageMs: number;
}

/**
 * `traffic`: the route's counters since this process started (ended flows plus the open ones so
 * far; RouteTraffic); zero when not given.
 */
export function routeView(r: RouteRuntime, about?: RouteAbout, traffic?: FlowCounters): RouteView {
  const t = traffic ?? zeroCounters();
  return {
    name: r.name,
    kind: about?.kind ?? 'route',
    ...(about?.agent !== undefined ? { agent: about.agent } : {}),
    proto: r.config.listen.transport,
    state: about?.state ?? 'up',
    listen: formatListenSpan(r.config.listen, r.config.ports),
    address: formatHostPort(r.local.address, r.local.port),
    upstream: upstreamShown(r.config),
    active: r.active,
    bytesFromClient: t.bytesFromClient,
    bytesToClient: t.bytesToClient,
    packetsFromClient: t.packetsFromClient,
    packetsToClient: t.packetsToClient,
    settings: settingsSummary(r.config),
    ...(r.config.origin ? { origin: r.config.origin } : {}),
    ...(about?.pool ? { pool: about.pool } : {}),
  };
}

/** What an operator checks first; the full config stays in the file. */
/** An address as `host:port`; a named service (a peer's `peer/service`, an agent's `agent/service`) by name. */
const upstreamShown = (c: ListenerConfig): string => (typeof c.upstream === 'string' ? c.upstream : formatHostPort(c.upstream.host, c.upstream.port));

function settingsSummary(c: ListenerConfig): Record<string, unknown> {
  const s: Record<string, unknown> =
    c.listen.transport === 'udp'
      ? {
          idleTimeout: formatDurationMs(c.udp.idleTimeoutMs),
          maxSessions: c.udp.maxSessions,
          maxSessionsPerSource: c.udp.maxSessionsPerSource,
          rate: c.udp.rate,
          ratePerSource: c.udp.ratePerSource,
          onLimit: c.udp.onLimit,
        }
      : {
          connectTimeout: formatDurationMs(c.tcp.connectTimeoutMs),
          idleTimeout: formatDurationMs(c.tcp.idleTimeoutMs),
          maxConnections: c.tcp.maxConnections,
          maxConnectionsPerSource: c.tcp.maxConnectionsPerSource,
          rate: c.tcp.rate,
          ratePerSource: c.tcp.ratePerSource,
        };
  s.acl = c.acl ? (c.acl.observeOnly ? 'observe-only' : 'on') : 'off';
  if (c.proxyProtocol) s.proxyProtocol = { accept: c.proxyProtocol.accept.length > 0, send: c.proxyProtocol.send ?? 'off' };
  if (c.bandwidth) s.bandwidth = bandwidthSummary(c.bandwidth);
  if (c.match) s.match = c.match;
  return s;
}

/** `{ perSource: { up: '10Mbit/s', down: '10Mbit/s' } }`: the limits as rates people read. */
function bandwidthSummary(b: BandwidthSettings): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const scope of ['perSource', 'perRoute'] as const) {
    const l = b[scope];
    if (!l) continue;
    out[scope] = {};
    if (l.up) out[scope].up = formatByteRate(l.up.perSecond);
    if (l.down) out[scope].down = formatByteRate(l.down.perSecond);
  }
  return out;
}

export function sessionView(s: SessionInfo, nowWall: number): SessionView {
  const v: SessionView = {
    flowId: s.id,
    route: s.route,
    proto: s.proto,
    state: s.state,
    clientAddr: s.client.address,
    clientPort: s.client.port,
    startTime: new Date(s.startedAt).toISOString(),
    ageMs: Math.max(0, nowWall - s.startedAt),
    bytesFromClient: s.bytesFromClient,
    bytesToClient: s.bytesToClient,
    packetsFromClient: s.packetsFromClient,
    packetsToClient: s.packetsToClient,
  };
  if (s.upstream) {
    v.upstreamAddr = s.upstream.address;
    v.upstreamPort = s.upstream.port;
  }
  if (s.listenPort !== undefined) v.listenPort = s.listenPort;
  return v;
}

/** Most sessions one response lists; `total` still counts them all. */
export const MAX_SESSIONS_LISTED = 1000;

/** Live sessions, oldest first, at most `limit` (capped at MAX_SESSIONS_LISTED). */
export function sessionsView(routes: readonly RouteRuntime[], nowWall: number, opts: { route?: string; limit?: number } = {}) {
  const limit = Math.max(0, Math.min(opts.limit ?? MAX_SESSIONS_LISTED, MAX_SESSIONS_LISTED));
  let total = 0;
  const sessions: SessionView[] = [];
  for (const r of routes) {
    if (opts.route !== undefined && r.name !== opts.route) continue;
    // active is cheap; sessions() copies, so skip the copy once the page is full.
    if (sessions.length >= limit) {
      total += r.active;
      continue;
    }
    const list = r.sessions();
    total += list.length;
    for (const s of list) {
      if (sessions.length >= limit) break;
      sessions.push(sessionView(s, nowWall));
    }
  }
  sessions.sort((a, b) => a.startTime.localeCompare(b.startTime) || a.flowId - b.flowId);
  return { total, truncated: total > sessions.length, sessions };
}
