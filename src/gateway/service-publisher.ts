import { randomInt } from 'node:crypto';
import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { errnoCode, isSluiceError } from '../core/errors.js';
import type { BandwidthLimit, BandwidthSettings, UdpSettings } from '../config/types.js';
import type { ListenerConfig } from '../session/session-policy.js';
import { bucketPair, type BucketPair } from '../admission/bandwidth-limiter.js';
import type { ExposedRouteSettings } from '../config/expose-config.js';
import type { EventStream } from '../observe/events.js';
import { TcpRoute } from '../listen/tcp-route.js';
import { UdpRoute } from '../listen/udp-route.js';
import type { RouteDepsSource, RouteRuntime } from '../listen/route.js';
import type { ControlMessage, Publish, RefusalCode } from '../protocol/tunnel/index.js';
import { AgentDatagramDialer, AgentStreamDialer } from '../upstream/agent/agent-dialer.js';
import type { AgentLink } from './agent-link.js';
import type { AgentPools } from './agent-pools.js';
import type { DatagramDialer, StreamDialer } from '../upstream/dialer.js';
import { inRanges, type PortRanges } from './port-range.js';

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
      const same = existing.transport === m.transport && existing.name === m.name && (m.remote.port === 0 || m.remote.port === existing.route.local.port);
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
    if (m.pool && pools) return pools.publish(link, { ...m, pool: m.pool }, (s) => link.services.set(m.serviceId, s));
    if (m.pool) return refuse('not-allowed', 'this gateway has no agent pools');
    const pool = pools?.holding(m);
    if (pool) return refuse('port-in-use', `${m.transport} port ${m.remote.port} is the pool of group "${pool.group.name}"; set group (and groupKey) to join it`);
    const ranges = this.deps.portsOf(link.name);
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
      if (link.state === 'closed') {
        await route.close('upstream-closed');
        return refuse('shutting-down', 'the agent went away');
      }
      link.services.set(m.serviceId, { serviceId: m.serviceId, name: m.name, transport: m.transport, route, stale: false });
      return { type: 'publish-ok', serviceId: m.serviceId, bound: route.local };
    }
    return refuse('port-in-use', m.remote.port !== 0 ? `port ${m.remote.port} is in use` : `no free port in ${formatRanges(ranges)}`);
  }

  /** The shared listener of an agent pool: `name` is the pool's, the dialers its pool's. */
  startPool(link: AgentLink, m: Publish, name: string, dialers: { stream: StreamDialer; datagram: DatagramDialer }): Promise<RouteRuntime> {
    return this.#start(link, m, m.remote.port, name, dialers);
  }

  async #start(link: AgentLink, m: Publish, port: number, pool?: string, poolDialers?: { stream: StreamDialer; datagram: DatagramDialer }): Promise<RouteRuntime> {
    const { settings, clock, events } = this.deps;
    const name = pool ?? `${link.name}/${m.name}`;
    // A pool's listener is no one agent's: it takes `services.*`, not the first member's own settings.
    const own = pool ? undefined : this.deps.bandwidthOf?.(link.name);
    const route: ListenerConfig = {
      name,
      listen: { transport: m.transport, host: m.remote.address, port },
      upstream: name,
      udp: m.transport === 'udp' && !pool ? this.deps.udpOf(link.name) : settings.udp,
      tcp: settings.tcp,
      acl: settings.acl,
      proxyProtocol: undefined,
      ...(settings.sourcePrefix ? { sourcePrefix: settings.sourcePrefix } : {}),
      ...serviceBandwidth(settings.bandwidth, own),
    };
    const { admit, nextFlowId, datapath, streamDatapath } = this.deps.routeDeps(route);
    const shared = own?.perAgent ? { sharedBandwidth: this.#agentBuckets(link.name, own.perAgent) } : {};
    const r =
      m.transport === 'udp'
        ? await UdpRoute.start(route, { clock, events, admit, nextFlowId, datapath, dialer: poolDialers?.datagram ?? new AgentDatagramDialer(link, m.serviceId), ...shared })
        : await TcpRoute.start(route, { clock, events, admit, nextFlowId, streamDatapath, dialer: poolDialers?.stream ?? new AgentStreamDialer(link, m.serviceId), ...shared });
    events.emit({ type: 'route-up', at: clock.wallNow(), route: name, listen: `${m.transport}://${formatEndpoint(r.local)}`, address: r.local });
    return r;
  }
}

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
