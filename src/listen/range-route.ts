import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { RouteConfig } from '../config/types.js';
import type { EndReason } from '../observe/events.js';
import { AdmissionLimits } from '../admission/limits.js';
import type { Admitter } from '../admission/admitter.js';
import { bandwidthLimiterFor, type BandwidthLimiter, type BucketPair } from '../admission/bandwidth-limiter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import type { PooledLimits } from '../session/session-shell.js';
import { tcpPolicyOf, udpPolicyOf } from '../session/session-policy.js';
import type { RouteRuntime, SessionInfo } from './route.js';
import { sharedTicks } from './shared-ticks.js';

/**
 * Starts the listener of one port of a range, its sessions counted in `pooled`, its timers on
 * `clock` (intervals of one period share one timer across the range: shared-ticks.ts).
 */
export type RangeMemberStart = (perPort: RouteConfig, pooled: PooledLimits, clock: Clock) => Promise<RouteRuntime<RouteConfig>>;

/** RangeMemberStart with the range's shared clock given. */
type PortStart = (perPort: RouteConfig, pooled: PooledLimits) => Promise<RouteRuntime<RouteConfig>>;

/** How many ports of a range bind at once (start-up is bounded by the datapath, not by this). */
const BIND_BATCH = 256;

/** The route one port of a range runs: its listen port and, for an upstream range, its upstream port. */
export function portOfRange(route: RouteConfig, offset: number): RouteConfig {
  const { ports: _ports, upstreamRange, ...base } = route;
  return {
    ...base,
    rangeMember: true,
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
    /** Buckets shared with other listeners (an agent's `perAgent` total on the gateway). */
    private readonly shared?: BucketPair,
  ) {
    this.limits = new AdmissionLimits(limitsOf(route), clock);
    this.bandwidth = bandwidthLimiterFor(route.bandwidth, clock, shared);
  }

  update(route: RouteConfig): void {
    this.limits.update(limitsOf(route));
    if (route.bandwidth === undefined && this.shared === undefined) this.bandwidth = null;
    else if (this.bandwidth === null) this.bandwidth = bandwidthLimiterFor(route.bandwidth, this.clock, this.shared);
    else this.bandwidth.update(route.bandwidth ?? {});
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
export class RangeRoute implements RouteRuntime<RouteConfig> {
  #route: RouteConfig;
  #closed: Promise<void> | undefined;
  /** One per port, in port order from `#route.listen.port`. */
  private members: readonly RouteRuntime<RouteConfig>[];

  private constructor(
    route: RouteConfig,
    private readonly pool: RoutePool,
    members: readonly RouteRuntime<RouteConfig>[],
    private readonly startOne: PortStart,
  ) {
    this.#route = route;
    this.members = members;
  }

  /** Whether `next` keeps this route but moves its range (same transport and host, both ranges). */
  movesRange(next: RouteConfig): boolean {
    const cur = this.#route;
    return (next.ports ?? 1) > 1 && next.listen.transport === cur.listen.transport && next.listen.host === cur.listen.host && (next.listen.port !== cur.listen.port || next.ports !== cur.ports);
  }

  /**
   * A reload that moves the range, in two steps so a failed bind changes nothing: binds the ports
   * `next` adds (rejects, having released them, if one is taken); `commit` then (at once) keeps the ports
   * both ranges hold (their sessions live on), ends those `next` drops (`route-removed`), and
   * applies `next`, resolving once the dropped ports are released; `abort` releases what was bound.
   */
  async prepareMove(next: RouteConfig, admit: Admitter | undefined): Promise<{ commit(): Promise<void>; abort(): Promise<void> }> {
    const byPort = new Map(this.members.map((m) => [m.local.port, m]));
    const count = next.ports ?? 1;
    const added = await bindAll(next, Array.from({ length: count }, (_, i) => i).filter((i) => !byPort.has(next.listen.port + i)), this.pool, this.startOne);
    return {
      commit: () => {
        const addedBy = new Map(added.map((m) => [m.local.port, m]));
        const members = Array.from({ length: count }, (_, i) => byPort.get(next.listen.port + i) ?? addedBy.get(next.listen.port + i)!);
        const kept = new Set(members);
        const dropped = this.members.filter((m) => !kept.has(m));
        this.members = members;
        this.update(next, admit);
        return Promise.all(dropped.map((m) => m.close('route-removed'))).then(() => undefined);
      },
      abort: async () => {
        await Promise.all(added.map((m) => m.close('shutdown')));
      },
    };
  }

  /** Binds every port; if one fails, the ports already bound are released and the error names the port. */
  static async start(route: RouteConfig, clock: Clock, startOne: RangeMemberStart, sharedBandwidth?: BucketPair): Promise<RangeRoute> {
    const pool = new RoutePool(route, clock, sharedBandwidth);
    const ticks = sharedTicks(clock);
    const start: PortStart = (one, pooled) => startOne(one, pooled, ticks);
    const members = await bindAll(route, Array.from({ length: route.ports ?? 1 }, (_, i) => i), pool, start);
    return new RangeRoute(route, pool, members, start);
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
    return this.members.flatMap((m) => m.sessions());
  }
}

/** Starts the ports at `offsets` of `route`'s range, BIND_BATCH at a time; on a failure, releases those started and rejects. */
async function bindAll(route: RouteConfig, offsets: readonly number[], pool: PooledLimits, startOne: PortStart): Promise<RouteRuntime<RouteConfig>[]> {
  const members: RouteRuntime<RouteConfig>[] = [];
  try {
    for (let at = 0; at < offsets.length; at += BIND_BATCH) {
      const settled = await Promise.allSettled(offsets.slice(at, at + BIND_BATCH).map((i) => startOne(portOfRange(route, i), pool)));
      for (const s of settled) if (s.status === 'fulfilled') members.push(s.value);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
    }
  } catch (err) {
    await Promise.all(members.map((m) => m.close('shutdown')));
    if (err instanceof SluiceError) throw err;
    throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on its range: ${(err as Error).message}`, { cause: err });
  }
  return members;
}
