import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { sluiceVersion } from '../core/version.js';
import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { SluiceConfig } from '../config/types.js';
import type { RouteRuntime } from '../listen/route.js';
import type { EventStream, FlowRef } from '../observe/events.js';
import type { ConntrackSourceDeps, ConntrackStats } from '../observe/conntrack/index.js';
import { newInstanceId } from '../observe/flow-id.js';
import { LoginThrottle } from '../admin/login-throttle.js';
import { LiveHub } from '../admin/live-hub.js';
import { RecentActivity } from '../admin/recent.js';
import { SourceActivity } from '../admin/source-activity.js';
import { RouteTraffic } from '../admin/route-traffic.js';
import type { RouteView } from '../admin/views.js';
import { AdminListener } from './admin-listener.js';
import { agentStatusView } from './agent-view.js';
import type { DataPathStatus } from './data-path-status.js';
import type { PoolView } from '../upstream/pool/pool.js';
import { gatewayPeersView, peerFlowOf, peerSummary, peerView } from './peer-view.js';
import { RecordSinks } from './record-sinks.js';
import { ServedRoutes } from './served-routes.js';

export interface OpsDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  /** The process log: output failures, conntrack status, the admin address. Never a token. */
  readonly log: Logger;
  /** The data path as the ops layer sees it. */
  readonly status: DataPathStatus;
  /** This process's UUID for flow UUIDs; a fresh one by default. */
  readonly instanceId?: string;
  /** Test seams for the conntrack source (a fake `conntrack`, another namespace's sysctls). */
  readonly conntrack?: Pick<ConntrackSourceDeps, 'spawn' | 'sysctl' | 'random'>;
}

/**
 * The ops layer: the event stream's record sinks (access log, flow records, conntrack, metrics)
 * and the admin listener with what it shows (routes, peers, health, recent flows and denials,
 * the live stream), built from the config and swapped on reload. It reads the data path only
 * through DataPathStatus.
 *
 * Two stages, so the sinks see the routes come up and the admin listener binds last:
 * `start` builds the sinks, `listen` binds the admin listener. `apply` (reload) does both.
 * Contract: `listen`, `apply` and `stop` are called one at a time; `stop` is final and idempotent.
 */
export class Ops {
  readonly instanceId: string;
  readonly recent = new RecentActivity();
  /** Per-source activity over recent windows, for /api/sources (admin/source-activity.ts). */
  readonly sources: SourceActivity;
  readonly live: LiveHub;
  /** Per-route traffic for /api/routes; subscribed while the admin listener runs. */
  readonly traffic: RouteTraffic;
  readonly #deps: OpsDeps;
  readonly #served: ServedRoutes;
  readonly #sinks: RecordSinks;
  readonly #admin: AdminListener;
  readonly #startedAt: number;
  readonly #version = sluiceVersion();
  #stopped = false;

  private constructor(deps: OpsDeps) {
    this.#deps = deps;
    const { clock, status } = deps;
    this.instanceId = deps.instanceId ?? newInstanceId();
    this.#startedAt = clock.wallNow();
    this.#served = new ServedRoutes({ routes: () => status.routes(), gateway: () => status.peers().gateway, agent: () => status.peers().agent, pool: (name) => status.pool?.(name) });
    const routes = () => this.#served.all();
    this.live = new LiveHub({ clock, routes });
    this.traffic = new RouteTraffic(routes);
    // Wrong admin credentials per source; outlives listener and token changes, so a reload does not reset a guesser.
    const throttle = new LoginThrottle(clock);
    this.sources = new SourceActivity(clock, (source) => status.admission().banState?.(source));
    const peerFlow = (flow: FlowRef) => peerFlowOf(status.peers().agent, flow);
    this.#sinks = new RecordSinks({ ...deps, instanceId: this.instanceId, routes, agent: () => status.peers().agent, peerFlow, datapath: () => status.health().datapath, streamDatapath: () => status.health().streamDatapath ?? 'js', throttle, pools: () => [...status.routes().flatMap((r) => { const view = status.pool?.(r.name); return view ? [{ route: r.name, view }] : []; }), ...agentPools(status)] });
    this.#admin = new AdminListener({
      clock,
      log: deps.log,
      events: deps.events,
      views: [this.recent.sink, this.live.sink, this.traffic.sink, this.sources.sink],
      serve: {
        routes,
        routeViews: () => this.routeViews(),
        peers: () => this.peers(),
        bans: () => status.admission().bans,
        crowdsecBans: () => status.admission().crowdsecBans,
        fleet: () => status.fleet?.(),
        metrics: () => this.#sinks.exposition(),
        health: () => this.status(),
        recent: this.recent,
        sources: this.sources,
        live: this.live,
        throttle,
      },
    });
  }

  /**
   * Builds every record sink the config asks for. Call it before the data path starts, so
   * `route-up` and the first sessions are seen. Nothing is left running when it throws.
   */
  static async start(config: SluiceConfig, deps: OpsDeps): Promise<Ops> {
    const ops = new Ops(deps);
    deps.log.info({ instanceId: ops.instanceId }, 'recording instance');
    try {
      ops.#admin.watch(config.admin);
      await ops.#sinks.apply(config);
    } catch (err) {
      await ops.stop();
      throw err;
    }
    return ops;
  }

  /** Binds the admin listener of `admin:` (if any). Throws SluiceError SLUICE_ERR_BIND. */
  async listen(config: SluiceConfig): Promise<void> {
    if (!this.#stopped) await this.#admin.apply(config.admin, config.gateway);
  }

  /**
   * Applies a validated config. Parts whose keys did not change are left alone. A new admin
   * address is bound before the old listener closes; if it cannot bind, the old one stays, the
   * other parts are still applied, and the bind error is thrown at the end.
   */
  async apply(config: SluiceConfig): Promise<void> {
    if (this.#stopped) return;
    let adminError: unknown;
    try {
      await this.#admin.apply(config.admin, config.gateway);
    } catch (err) {
      adminError = err;
    }
    await this.#sinks.apply(config);
    if (adminError !== undefined) throw adminError;
  }

  /** Final: closes the admin listener and streams, stops conntrack, flushes and closes the outputs. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.live.close();
    await this.#admin.apply(undefined);
    await this.#sinks.stop();
  }

  /** The admin listener's bound address, while it runs. */
  get adminAddress(): Endpoint | undefined {
    return this.#admin.address;
  }

  /** True while the admin listener speaks HTTPS (`admin.tls`). */
  get adminTls(): boolean {
    return this.#admin.secure;
  }

  /** The metrics registry (without the process collectors), while metrics are on. */
  get registry(): Registry | undefined {
    return this.#sinks.registry;
  }

  /** The conntrack source's counters, while it runs (tests, health). */
  get conntrack(): { state: string; pid: number | undefined; stats: Readonly<ConntrackStats> } | undefined {
    const s = this.#sinks.conntrack;
    return s && { state: s.state, pid: s.pid, stats: s.stats };
  }

  /** Every listener with sessions: routes, published services, connect listeners. */
  routes(): readonly RouteRuntime[] {
    return this.#served.all();
  }

  /** The body of `GET /api/routes` (docs/admin.md). */
  routeViews(): RouteView[] {
    return this.#served.views(this.traffic);
  }

  /** The body of `GET /api/peers` (docs/admin.md). */
  peers(): Record<string, unknown> {
    const { agent, gateway } = this.#deps.status.peers();
    return { ...peerView(agent, this.#deps.clock.now()), gateway: gateway ? gatewayPeersView(gateway) : null };
  }

  /** The body of `GET /api/health` (docs/admin.md). */
  status(): Record<string, unknown> {
    const routes = this.#served.all();
    const { agent } = this.#deps.status.peers();
    const { datapath, streamDatapath = 'js', recordCipher, congestion, datagramCipher, containers, fleet } = this.#deps.status.health();
    const gateway = this.#served.gatewaySummary();
    const peers = peerSummary(agent);
    const problems = this.#sinks.problems();
    if (fleet?.status === 'degraded') problems.push(`fleet: Redis unreachable (${fleet.error ?? 'connecting'}); fleet-wide limits: ${fleet.onRedisDown}`);
    return {
      ...(problems.length > 0 ? { status: 'degraded', problems } : {}),
      version: this.#version,
      instanceId: this.instanceId,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeMs: Math.max(0, this.#deps.clock.wallNow() - this.#startedAt),
      routes: routes.length,
      activeSessions: routes.reduce((n, r) => n + r.active, 0),
      datapath,
      streamDatapath,
      ...(recordCipher !== undefined ? { recordCipher } : {}),
      ...(congestion !== undefined ? { congestion } : {}),
      ...(datagramCipher !== undefined ? { datagramCipher } : {}),
      ...(containers !== undefined ? { containers } : {}),
      ...(fleet !== undefined ? { fleet } : {}),
      ...this.#sinks.status(),
      ...(peers ? { peers } : {}),
      ...(gateway ? { gateway } : {}),
      ...(agent ? { agent: agentStatusView(agent) } : {}),
    };
  }
}

/** The gateway's agent pools (docs/pools.md, "Agent pools"), for the pool metrics. */
function agentPools(status: DataPathStatus): { route: string; view: PoolView }[] {
  return (status.peers().gateway?.published() ?? []).flatMap((p) => (p.pool ? [{ route: p.route.name, view: p.pool.view() }] : []));
}
