import { randomInt } from 'node:crypto';
import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { errnoCode, isSluiceError } from '../core/errors.js';
import type { BandwidthLimit, BandwidthSettings, UdpSettings } from '../config/types.js';
import type { ListenerConfig } from '../session/session-policy.js';
import { bucketPair, type BucketPair } from '../admission/bandwidth-limiter.js';
import type { ExposedRouteSettings, GatewayNames } from '../config/expose-config.js';
import type { RouteConfig } from '../config/types.js';
import { formatListenSpan } from '../config/port-span.js';
import { namePolicyAllows } from '../config/expose-names.js';
import type { EventStream } from '../observe/events.js';
import { TcpRoute } from '../listen/tcp-route.js';
import { UdpRoute } from '../listen/udp-route.js';
import type { RouteDepsSource, RouteRuntime } from '../listen/route.js';
import { RangeRoute } from '../listen/range-route.js';
import { SharedTcpListeners } from '../listen/shared-routes.js';
import { SharedUdpListeners } from '../listen/shared-udp-routes.js';
import type { ControlMessage, Publish, RefusalCode, ServiceTransport } from '../protocol/tunnel/index.js';
import { AgentDatagramDialer, AgentStreamDialer } from '../upstream/agent/agent-dialer.js';
import type { AgentLink } from './agent-link.js';
import { NameClaims, type NameHolder } from './name-claims.js';
import type { AgentPools, PoolRefusal } from './agent-pools.js';
import type { DatagramDialer, StreamDialer } from '../upstream/dialer.js';
import { inRanges, type PortRanges } from './port-range.js';
import type { PublishedService } from './agent-link.js';

export interface PublisherDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly routeDeps: RouteDepsSource;
  readonly settings: ExposedRouteSettings;
  readonly maxServicesPerAgent: number;
  readonly portsOf: (agent: string) => PortRanges;
  /** UDP settings of an agent's public listeners (`services.udp`, or the agent's own reply budget). */
  readonly udpOf: (agent: string) => UdpSettings;
  /** The agent's own `bandwidth` on the gateway, if set (else `services.bandwidth` applies). */
  readonly bandwidthOf?: (agent: string) => BandwidthSettings | undefined;
  /** `gateway.names`: the shared ports of exposures by name; absent = none are served. */
  readonly names?: GatewayNames;
  /** `agents.<name>.names`: what the agent may claim there; absent = nothing. */
  readonly namesOf?: (agent: string) => readonly string[] | undefined;
  /** Agent pools (agent-pools.ts): a PUBLISH with a group joins one; a single service may not take a pool's port. */
  readonly pools?: AgentPools;
}

/** Tries for a free port when the agent asked for "any" (port 0). */
const ANY_PORT_TRIES = 64;

/**
 * Turns a PUBLISH into a public listener: an ordinary TcpRoute or UdpRoute (ACL, caps, rate
 * limits, access log and events as any route) whose upstream dialer is the agent's. Answers with
 * PUBLISH_OK(bound) or PUBLISH_ERROR(code) and never throws.
 */
export class ServicePublisher {
  /** `perAgent` buckets, one pair per configured agent name, shared by all its services for the gateway's lifetime. */
  readonly #sharedByAgent = new Map<string, BucketPair>();
  /** Names held on the shared ports, and those ports' listeners (bound by the first name, closed after the last). */
  readonly #claims = new NameClaims();
  readonly #holders = new WeakMap<PublishedService, NameHolder>();
  /** The names agent pools hold, by their listener. */
  readonly #poolNames = new Map<RouteRuntime, { transport: ServiceTransport; name: string; holder: NameHolder }>();
  readonly #sharedTcp = new SharedTcpListeners();
  readonly #sharedUdp = new SharedUdpListeners();

  constructor(private readonly deps: PublisherDeps) {}

  #agentBuckets(agent: string, limit: BandwidthLimit): BucketPair {
    let pair = this.#sharedByAgent.get(agent);
    if (pair === undefined) this.#sharedByAgent.set(agent, (pair = bucketPair(limit, this.deps.clock)));
    return pair;
  }

  async publish(link: AgentLink, m: Publish): Promise<ControlMessage> {
    const refuse = (code: RefusalCode, message: string): ControlMessage => ({ type: 'publish-error', serviceId: m.serviceId, code, message });
    const existing = link.services.get(m.serviceId);
    if (existing) {
      const same = existing.transport === m.transport && existing.name === m.name && (m.remote.port === 0 || m.remote.port === existing.route.local.port)
        && existing.ports === m.ports && existing.serverName === m.serverName;
      if (existing.stale && same) {
        existing.stale = false;
        if (existing.leave) this.deps.pools?.linkChanged(link, 'published-again');
        return { type: 'publish-ok', serviceId: m.serviceId, bound: existing.route.local };
      }
      if (!existing.stale) return refuse('duplicate-service', `service id ${m.serviceId} is already published`);
      await link.unpublish(m.serviceId);
    }
    if (link.services.size >= this.deps.maxServicesPerAgent) return refuse('too-many-services', `at most ${this.deps.maxServicesPerAgent} services per agent`);
    const pools = this.deps.pools;
    if (m.pool && m.ports !== undefined) return refuse('not-allowed', 'an agent pool shares one port: port ranges are not pooled');
    if (m.pool && !pools) return refuse('not-allowed', 'this gateway has no agent pools');
    if (m.pool && m.serverName !== undefined) {
      const denied = this.#nameDenied(link, m, refuse);
      if (denied) return denied;
    }
    if (m.pool) return pools!.publish(link, { ...m, pool: m.pool }, (s) => link.services.set(m.serviceId, s));
    const pool = m.serverName === undefined ? pools?.holding(m) : undefined;
    if (pool) return refuse('port-in-use', `${m.transport} port ${m.remote.port} is the pool of group "${pool.group.name}"; set group (and groupKey) to join it`);
    if (m.serverName !== undefined) return this.#publishByName(link, m, refuse);
    const ranges = this.deps.portsOf(link.name);
    if (m.ports !== undefined) return this.#publishRange(link, m, ranges, refuse);
    if (m.remote.port !== 0 && !inRanges(ranges, m.remote.port)) {
      return refuse('port-outside-range', `port ${m.remote.port} is outside the ports this agent may use (${formatRanges(ranges)})`);
    }
    const candidates = m.remote.port !== 0 ? [m.remote.port] : pickPorts(ranges, ANY_PORT_TRIES);
    for (const port of candidates) {
      let route: RouteRuntime;
      try {
        route = await this.#start(link, m, port);
      } catch (err) {
        const code = errnoCode(isSluiceError(err) ? err.cause : err);
        if (code === 'EADDRINUSE' || code === 'EACCES') continue;
        return refuse('invalid-request', `cannot listen on ${m.remote.address}:${port}: ${code ?? (err as Error).message}`);
      }
      return this.#keep(link, m, route);
    }
    return refuse('port-in-use', m.remote.port !== 0 ? `port ${m.remote.port} is in use` : `no free port in ${formatRanges(ranges)}`);
  }

  /**
   * A range: every port inside the agent's `ports`, one listener per port (RangeRoute: caps across
   * the range), each telling the agent its public port. All or nothing: a port in use releases the rest.
   */
  async #publishRange(link: AgentLink, m: Publish, ranges: PortRanges, refuse: Refuse): Promise<ControlMessage> {
    const first = m.remote.port;
    const last = first + m.ports! - 1;
    const span = `${first}-${last}`;
    if (first === 0) return refuse('invalid-request', `a range of ${m.ports} ports needs its first port (got port 0)`);
    if (last > 65535) return refuse('invalid-request', `range ${span} goes past port 65535`);
    for (let p = first; p <= last; p++) {
      if (!inRanges(ranges, p)) return refuse('port-outside-range', `ports ${span}: port ${p} is outside the ports this agent may use (${formatRanges(ranges)})`);
    }
    let route: RouteRuntime;
    try {
      route = await this.#startRange(link, m);
    } catch (err) {
      const code = errnoCode(isSluiceError(err) ? err.cause : err);
      if (code === 'EADDRINUSE' || code === 'EACCES') return refuse('port-in-use', `ports ${span}: ${(err as Error).message}`);
      return refuse('invalid-request', `cannot listen on ${m.remote.address}:${span}: ${code ?? (err as Error).message}`);
    }
    return this.#keep(link, m, route);
  }

  /** Whether the gateway serves `m`'s name transport and the agent's `names` allow the name: the refusal when not. */
  #nameDenied(link: AgentLink, m: Publish, refuse: Refuse): ControlMessage | undefined {
    const name = m.serverName!;
    const scheme = m.transport === 'tcp' ? 'tls' : 'quic';
    const where = m.transport === 'tcp' ? this.deps.names?.tls : this.deps.names?.quic;
    if (where === undefined) return refuse('not-allowed', `this gateway serves no ${scheme}:// names (gateway.names.${scheme} is not set)`);
    const policy = this.deps.namesOf?.(link.name);
    if (!namePolicyAllows(policy, name)) {
      return refuse('not-allowed', `${scheme}://${name} is not among the names agent "${link.name}" may claim (${policy?.join(', ') ?? 'none: set gateway.agents.' + link.name + '.names'})`);
    }
    return undefined;
  }

  /** A name on the gateway's shared TLS or QUIC port: allowed by the agent's `names`, held by one service (or one agent pool) at a time. */
  async #publishByName(link: AgentLink, m: Publish, refuse: Refuse): Promise<ControlMessage> {
    const denied = this.#nameDenied(link, m, refuse);
    if (denied) return denied;
    const name = m.serverName!;
    const scheme = m.transport === 'tcp' ? 'tls' : 'quic';
    const where = (m.transport === 'tcp' ? this.deps.names?.tls : this.deps.names?.quic)!;
    const holder: NameHolder = { agent: link.name, service: m.name, serviceId: m.serviceId, gone: () => link.state === 'closed' };
    const held = this.#claims.claim(m.transport, name, holder);
    if (held) return refuse('name-in-use', heldBy(`${scheme}://${name}`, held));
    let route: RouteRuntime;
    try {
      route = await this.#startNamed(link, m, where);
    } catch (err) {
      this.#claims.release(m.transport, name, holder);
      return refuse('internal', `cannot serve ${scheme}://${name}: ${(err as Error).message}`);
    }
    const answer = await this.#keep(link, m, route);
    const svc = link.services.get(m.serviceId);
    if (answer.type === 'publish-ok' && svc) this.#holders.set(svc, holder);
    else this.#claims.release(m.transport, name, holder);
    return answer;
  }

  /** A published service's listener closed: its name, if it held one, is free again. */
  released(s: PublishedService): void {
    const holder = this.#holders.get(s);
    if (holder && s.serverName !== undefined) this.#claims.release(s.transport, s.serverName, holder);
  }

  async #keep(link: AgentLink, m: Publish, route: RouteRuntime): Promise<ControlMessage> {
    if (link.state === 'closed') {
      await route.close('upstream-closed');
      return { type: 'publish-error', serviceId: m.serviceId, code: 'shutting-down', message: 'the agent went away' };
    }
    link.services.set(m.serviceId, {
      serviceId: m.serviceId, name: m.name, transport: m.transport, route, stale: false,
      ...(m.ports !== undefined ? { ports: m.ports } : {}), ...(m.serverName !== undefined ? { serverName: m.serverName } : {}),
    });
    return { type: 'publish-ok', serviceId: m.serviceId, bound: route.local };
  }

  /** The public listener's settings, as for any route (upstream: the agent's service, by name). */
  #listenerConfig(link: AgentLink, m: Publish, port: number, pool?: string): ListenerConfig {
    const { settings } = this.deps;
    const name = pool ?? `${link.name}/${m.name}`;
    return {
      name,
      listen: { transport: m.transport, host: m.remote.address, port },
      upstream: name,
      udp: m.transport === 'udp' && !pool ? this.deps.udpOf(link.name) : settings.udp,
      tcp: settings.tcp,
      acl: settings.acl,
      proxyProtocol: undefined,
      ...(settings.sourcePrefix ? { sourcePrefix: settings.sourcePrefix } : {}),
      // A pool's listener is no one agent's: it takes `services.*`, not the first member's own settings.
      ...serviceBandwidth(settings.bandwidth, pool ? undefined : this.deps.bandwidthOf?.(link.name)),
    };
  }

  #sharedBandwidth(agent: string): BucketPair | undefined {
    const own = this.deps.bandwidthOf?.(agent);
    return own?.perAgent ? this.#agentBuckets(agent, own.perAgent) : undefined;
  }

  #up(route: ListenerConfig, r: RouteRuntime, listen: string): RouteRuntime {
    const { clock, events } = this.deps;
    events.emit({ type: 'route-up', at: clock.wallNow(), route: route.name, listen, address: r.local });
    return r;
  }

  async #startRange(link: AgentLink, m: Publish): Promise<RouteRuntime> {
    const { clock, events } = this.deps;
    const listener = this.#listenerConfig(link, m, m.remote.port);
    // RangeRoute maps RouteConfigs; the agent is the upstream of every port (no port to map there).
    const route: RouteConfig = { ...listener, upstream: { host: listener.name, port: 0 }, ports: m.ports! };
    const { admit, nextFlowId, datapath, streamDatapath } = this.deps.routeDeps(listener);
    const r = await RangeRoute.start(route, clock, (one, pooled, ticks) =>
      m.transport === 'udp'
        ? UdpRoute.start(one, { clock: ticks, events, admit, nextFlowId, datapath, pooled, dialer: new AgentDatagramDialer(link, m.serviceId, one.listen.port) })
        : TcpRoute.start(one, { clock: ticks, events, admit, nextFlowId, streamDatapath, pooled, dialer: new AgentStreamDialer(link, m.serviceId) }),
    this.#sharedBandwidth(link.name));
    return this.#up(listener, r, formatListenSpan(route.listen, route.ports));
  }

  async #startNamed(link: AgentLink, m: Publish, where: GatewayNames['tls'] & object, pool?: string, poolDialers?: PoolDialers): Promise<RouteRuntime> {
    const { clock, events } = this.deps;
    const listener = { ...this.#listenerConfig(link, m, where.port, pool), listen: where };
    const route: RouteConfig = { ...listener, upstream: { host: listener.name, port: 0 }, match: { sni: [m.serverName!] } };
    const { admit, nextFlowId, datapath } = this.deps.routeDeps(listener);
    const shared = pool ? undefined : this.#sharedBandwidth(link.name);
    const common = { clock, events, admit, nextFlowId, ...(shared ? { sharedBandwidth: shared } : {}) };
    const r = m.transport === 'udp'
      ? await this.#sharedUdp.start(route, { ...common, datapath, dialer: poolDialers?.datagram ?? new AgentDatagramDialer(link, m.serviceId) })
      : await this.#sharedTcp.start(route, { ...common, dialer: poolDialers?.stream ?? new AgentStreamDialer(link, m.serviceId) });
    return this.#up(listener, r, `${m.transport === 'tcp' ? 'tls' : 'quic'}://${m.serverName}`);
  }

  /**
   * The shared listener of an agent pool: `name` is the pool's, the dialers its pool's. A pool by
   * name claims its name for the group (released by `poolClosed`); a name a single service holds
   * is refused with `name-in-use`.
   */
  async startPool(link: AgentLink, m: Publish, name: string, dialers: PoolDialers): Promise<RouteRuntime | PoolRefusal> {
    if (m.serverName === undefined) return this.#start(link, m, m.remote.port, name, dialers);
    const where = (m.transport === 'tcp' ? this.deps.names?.tls : this.deps.names?.quic)!;
    const remote = `${m.transport === 'tcp' ? 'tls' : 'quic'}://${m.serverName}`;
    const holder: NameHolder = { agent: '', group: m.pool?.group, service: name, serviceId: 0, gone: () => false };
    const held = this.#claims.claim(m.transport, m.serverName, holder);
    if (held) return { code: 'name-in-use', message: heldBy(remote, held) };
    try {
      const route = await this.#startNamed(link, m, where, name, dialers);
      this.#poolNames.set(route, { transport: m.transport, name: m.serverName, holder });
      return route;
    } catch (err) {
      this.#claims.release(m.transport, m.serverName, holder);
      return { code: 'internal', message: `cannot serve ${remote}: ${(err as Error).message}` };
    }
  }

  /** An agent pool's last member left (its listener is closing): a pool by name frees its name. */
  poolClosed(route: RouteRuntime): void {
    const held = this.#poolNames.get(route);
    if (held) this.#claims.release(held.transport, held.name, held.holder);
    this.#poolNames.delete(route);
  }

  async #start(link: AgentLink, m: Publish, port: number, pool?: string, poolDialers?: PoolDialers): Promise<RouteRuntime> {
    const { clock, events } = this.deps;
    const route = this.#listenerConfig(link, m, port, pool);
    const { admit, nextFlowId, datapath, streamDatapath } = this.deps.routeDeps(route);
    const sharedBandwidth = pool ? undefined : this.#sharedBandwidth(link.name);
    const shared = sharedBandwidth ? { sharedBandwidth } : {};
    const r =
      m.transport === 'udp'
        ? await UdpRoute.start(route, { clock, events, admit, nextFlowId, datapath, dialer: poolDialers?.datagram ?? new AgentDatagramDialer(link, m.serviceId), ...shared })
        : await TcpRoute.start(route, { clock, events, admit, nextFlowId, streamDatapath, dialer: poolDialers?.stream ?? new AgentStreamDialer(link, m.serviceId), ...shared });
    return this.#up(route, r, `${m.transport}://${formatEndpoint(r.local)}`);
  }
}

type Refuse = (code: RefusalCode, message: string) => ControlMessage;

/** Why `remote` is refused to a second claimant: who holds it, and for a pool how to join. */
function heldBy(remote: string, held: NameHolder): string {
  return held.group !== undefined
    ? `${remote} is the pool of group "${held.group}"; set group (and groupKey) to join it`
    : `${remote} is held by agent "${held.agent}" (service ${held.service})`;
}
type PoolDialers = { readonly stream: StreamDialer; readonly datagram: DatagramDialer };

/** A service's limits: the agent's own `perSource` / `perRoute` where set, else `services.bandwidth`'s. */
function serviceBandwidth(services: BandwidthSettings | undefined, agent: BandwidthSettings | undefined): { bandwidth?: BandwidthSettings } {
  const perSource = agent?.perSource ?? services?.perSource;
  const perRoute = agent?.perRoute ?? services?.perRoute;
  return perSource || perRoute ? { bandwidth: { ...(perSource ? { perSource } : {}), ...(perRoute ? { perRoute } : {}) } } : {};
}

function formatEndpoint(e: Endpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

function formatRanges(r: PortRanges): string {
  return r.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ');
}

/** Up to `n` distinct random ports from the ranges. */
function pickPorts(ranges: PortRanges, n: number): number[] {
  const total = ranges.reduce((sum, [a, b]) => sum + b - a + 1, 0);
  const out = new Set<number>();
  for (let i = 0; i < n * 2 && out.size < Math.min(n, total); i++) {
    let k = randomInt(total);
    for (const [a, b] of ranges) {
      if (k <= b - a) {
        out.add(a + k);
        break;
      }
      k -= b - a + 1;
    }
  }
  return [...out];
}
