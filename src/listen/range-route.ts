import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { RouteConfig } from '../config/types.js';
import type { EndReason } from '../observe/events.js';
import { AdmissionLimits } from '../admission/limits.js';
import type { Admitter } from '../admission/admitter.js';
import { bandwidthLimiterFor, type BandwidthLimiter } from '../admission/bandwidth-limiter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import type { PooledLimits } from '../session/session-shell.js';
import { tcpPolicyOf, udpPolicyOf } from '../session/session-policy.js';
import type { RouteRuntime, SessionInfo } from './route.js';

/** Starts the listener of one port of a range, its sessions counted in `pooled`. */
export type RangeMemberStart = (perPort: RouteConfig, pooled: PooledLimits) => Promise<RouteRuntime>;

/** How many ports of a range bind at once (start-up is bounded by the datapath, not by this). */
const BIND_BATCH = 256;

/** The route one port of a range runs: its listen port and, for an upstream range, its upstream port. */
export function portOfRange(route: RouteConfig, offset: number): RouteConfig {
  const { ports: _ports, upstreamRange, ...base } = route;
  return {
    ...base,
    listen: { ...route.listen, port: route.listen.port + offset },
    upstream: upstreamRange ? { ...route.upstream, port: route.upstream.port + offset } : route.upstream,
  };
}

/** Caps, rates and bandwidth of one route, shared by the listeners of its ports. */
class RoutePool implements PooledLimits {
  readonly limits: AdmissionLimits;
  bandwidth: BandwidthLimiter | null;

  constructor(
    route: RouteConfig,
    private readonly clock: Clock,
  ) {
    this.limits = new AdmissionLimits(limitsOf(route), clock);
    this.bandwidth = bandwidthLimiterFor(route.bandwidth, clock);
  }

  update(route: RouteConfig): void {
    this.limits.update(limitsOf(route));
    if (route.bandwidth === undefined) this.bandwidth = null;
    else if (this.bandwidth === null) this.bandwidth = bandwidthLimiterFor(route.bandwidth, this.clock);
    else this.bandwidth.update(route.bandwidth);
  }
}

function limitsOf(route: RouteConfig) {
  return (route.listen.transport === 'udp' ? udpPolicyOf(route) : tcpPolicyOf(route)).limits;
}

/**
 * A route whose `listen` is a port range (docs/ranges.md): one listener per port, each a plain
 * UDP or TCP route for that port (its upstream port fixed when it starts, so nothing is mapped
 * per datagram), all under the route's name and sharing one set of caps, rates and bandwidth
 * buckets: a cap is per route, not per port. A reload that changes the range restarts the route
 * (config/diff.ts); other changes reach every port.
 */
export class RangeRoute implements RouteRuntime {
  #route: RouteConfig;
  #closed: Promise<void> | undefined;

  private constructor(
    route: RouteConfig,
    private readonly pool: RoutePool,
    private readonly members: readonly RouteRuntime[],
  ) {
    this.#route = route;
  }

  /** Binds every port; if one fails, the ports already bound are released and the error names the port. */
  static async start(route: RouteConfig, clock: Clock, startOne: RangeMemberStart): Promise<RangeRoute> {
    const pool = new RoutePool(route, clock);
    const members: RouteRuntime[] = [];
    const count = route.ports ?? 1;
    try {
      for (let at = 0; at < count; at += BIND_BATCH) {
        const batch = Array.from({ length: Math.min(BIND_BATCH, count - at) }, (_, i) => startOne(portOfRange(route, at + i), pool));
        const settled = await Promise.allSettled(batch);
        for (const s of settled) if (s.status === 'fulfilled') members.push(s.value);
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (err) {
      await Promise.all(members.map((m) => m.close('shutdown')));
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on its range: ${(err as Error).message}`, { cause: err });
    }
    return new RangeRoute(route, pool, members);
  }

  get name(): string {
    return this.#route.name;
  }

  get config(): RouteConfig {
    return this.#route;
  }

  /** The first port's address; `ports` counts the rest. */
  get local(): Endpoint {
    return this.members[0]!.local;
  }

  get active(): number {
    let n = 0;
    for (const m of this.members) n += m.active;
    return n;
  }

  update(route: RouteConfig, admit: Admitter | undefined): void {
    this.#route = route;
    this.pool.update(route);
    this.members.forEach((m, i) => m.update(portOfRange(route, i), admit));
  }

  reverdict(): ReverdictCount {
    const sum: ReverdictCount = { checked: 0, ended: 0, wouldEnd: 0 };
    for (const m of this.members) {
      const c = m.reverdict();
      sum.checked += c.checked;
      sum.ended += c.ended;
      sum.wouldEnd += c.wouldEnd;
    }
    return sum;
  }

  async drain(): Promise<void> {
    await Promise.all(this.members.map((m) => m.drain()));
  }

  close(reason: EndReason): Promise<void> {
    this.#closed ??= Promise.all(this.members.map((m) => m.close(reason))).then(() => undefined);
    return this.#closed;
  }

  sessions(): SessionInfo[] {
    return this.members.flatMap((m) => m.sessions().map((s) => ({ ...s, listenPort: m.local.port })));
  }
}
