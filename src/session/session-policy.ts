import type { HostPort } from '../core/address.js';
import type { BandwidthSettings, ProxyProtocolSettings, RouteConfig, RouteOrigin, UdpSettings } from '../config/types.js';
import type { LimitSettings } from '../admission/limits.js';

/**
 * What governs the sessions of one listener, whoever owns it: a route, a connect listener, an
 * agent's exposed service. Each owner builds it from its own config; the session shell
 * (session-shell.ts) and the protocol sides read nothing else. Replaced whole on reload.
 */
export interface SessionPolicy {
  /** The name events and records carry (a route name, `<agent>/<service>`). */
  readonly name: string;
  /** Where sessions go; port 0 when the listener reaches a named service (`peer/service`) its dialer knows the way to. */
  readonly upstream: HostPort;
  /** Set for routes discovered from container labels; carried on every flow. */
  readonly origin: RouteOrigin | undefined;
  /** The listen port, carried on every flow, when the route is one port of a range; undefined otherwise. */
  readonly listenPort?: number;
  /** Session caps and creation rates, per listener and per source. */
  readonly limits: LimitSettings;
  /** Byte-rate limits; undefined = unlimited (the datapath does no bandwidth work). */
  readonly bandwidth: BandwidthSettings | undefined;
  /** No bytes either way for this long ends a session; 0 = never. */
  readonly idleTimeoutMs: number;
}

export interface TcpSessionPolicy extends SessionPolicy {
  /** Bounds one upstream dial, name resolution included (the dialer honours it). */
  readonly connectTimeoutMs: number;
  readonly proxyProtocol: ProxyProtocolSettings | undefined;
}

/** PROXY protocol as a UDP session table uses it (v2 per datagram; no header deadline on UDP). */
export type UdpProxyPolicy = Pick<ProxyProtocolSettings, 'accept' | 'send' | 'udp' | 'maxHeaderBytes'>;

/**
 * UDP has no connect timeout: opening a datagram channel waits on no answer from the upstream
 * (upstream/dialer.ts OpenOptions), so the policy has none to give.
 */
export interface UdpSessionPolicy extends SessionPolicy {
  /** Caps, setup queue, datagram size, reply budget and what to do at the cap. */
  readonly udp: UdpSettings;
  readonly proxyProtocol: UdpProxyPolicy | undefined;
}

/**
 * What a listener is built from and what the admin views show of it. A config route is one. A
 * listener the config does not make a route (an agent's connect listener) reaches a named service
 * instead of an address: its `upstream` is that name, its dialer knows the way.
 */
export type ListenerConfig = Omit<RouteConfig, 'upstream'> & { readonly upstream: HostPort | string };

/** What every policy of a listener shares. */
function routeBase(route: ListenerConfig, limits: LimitSettings, idleTimeoutMs: number): SessionPolicy {
  const upstream = typeof route.upstream === 'string' ? { host: route.upstream, port: 0 } : route.upstream;
  const base = { name: route.name, upstream, origin: route.origin, limits, bandwidth: route.bandwidth, idleTimeoutMs };
  return route.rangeMember ? { ...base, listenPort: route.listen.port } : base;
}

/** A route's TCP session policy (its `tcp` block, `proxyProtocol`, `sourcePrefix`, `bandwidth`). */
export function tcpPolicyOf(route: ListenerConfig): TcpSessionPolicy {
  const t = route.tcp;
  const limits = { maxPerRoute: t.maxConnections, maxPerSource: t.maxConnectionsPerSource, rate: t.rate, ratePerSource: t.ratePerSource, sourcePrefix: route.sourcePrefix };
  return { ...routeBase(route, limits, t.idleTimeoutMs), connectTimeoutMs: t.connectTimeoutMs, proxyProtocol: route.proxyProtocol };
}

/** A route's UDP session policy (its `udp` block, `proxyProtocol`, `sourcePrefix`, `bandwidth`). */
export function udpPolicyOf(route: ListenerConfig): UdpSessionPolicy {
  const u = route.udp;
  return { ...routeBase(route, udpLimits(u, route.sourcePrefix), u.idleTimeoutMs), udp: u, proxyProtocol: route.proxyProtocol };
}

/** The admission limits a `udp` block sets. */
export function udpLimits(u: UdpSettings, sourcePrefix?: LimitSettings['sourcePrefix']): LimitSettings {
  return { maxPerRoute: u.maxSessions, maxPerSource: u.maxSessionsPerSource, rate: u.rate, ratePerSource: u.ratePerSource, sourcePrefix };
}
