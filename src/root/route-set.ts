import type { Clock } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { RouteConfig, SluiceConfig } from '../config/types.js';
import { chainAdmitters, type Admitter } from '../admission/admitter.js';
import { aclAdmitter } from '../admission/acl-admitter.js';
import { VerdictChanges } from '../admission/reverdict.js';
import type { CountryLookup } from '../admission/acl/country.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import type { EndReason, EventStream } from '../observe/events.js';
import type { DatagramDialer, StreamDialer } from '../upstream/dialer.js';
import type { AdmissionKeys, RouteRuntime } from '../listen/route.js';
import { TcpRoute } from '../listen/tcp-route.js';
import { SharedTcpListeners } from '../listen/shared-routes.js';
import { SharedUdpListeners } from '../listen/shared-udp-routes.js';
import { UdpRoute } from '../listen/udp-route.js';
import { RangeRoute } from '../listen/range-route.js';
import { formatListenSpan } from '../config/port-span.js';
import { diffRoutes } from '../config/diff.js';
import type { ReloadSummary } from '../discovery/container-routes.js';
import { RoutePools } from './route-pools.js';
import type { PoolView } from '../upstream/pool/pool.js';

export interface RouteSetDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly streamDialer: StreamDialer;
  readonly datagramDialer: DatagramDialer;
  /** An admission step after the ACL for every route (threat intel). */
  readonly admit?: Admitter;
  /** The CrowdSec step for one route, after its ACL; undefined for routes that do not opt in (`acl.crowdsec`). */
  readonly crowdsec?: (listener: AdmissionKeys) => Admitter | undefined;
  /** How UDP datagrams move (default: Node's dgram). */
  readonly udpDatapath?: UdpDatapath;
  /** How TCP connections are accepted, dialed and joined (default: Node's net). */
  readonly streamDatapath?: StreamDatapath;
  /** The country database for ACL country rules; read at start and at each reload. */
  readonly geo?: () => CountryLookup | undefined;
  /**
   * Where verdict changes are announced (CrowdSec pulls, bans); the node registers its routes
   * and announces its own reloads there. Default: one of its own.
   */
  readonly verdicts?: VerdictChanges;
  /** Aborting it stops at once, as destroy() does: drains still running end with `shutdown`. */
  readonly signal?: AbortSignal;
}

export type { ReloadSummary };

/**
 * The route set of a running Sluice: the config's routes, bound at start, diffed and swapped on
 * reload, drained on shutdown. Owns every listener it starts.
 */
export class RouteSet {
  readonly #routes = new Map<string, RouteRuntime<RouteConfig>>();
  readonly #draining = new Set<Promise<void>>();
  #config: SluiceConfig;
  #flowId = 0;
  #stopping: Promise<void> | undefined;
  /** Live sessions are judged again whenever verdict inputs change (admission/reverdict.ts). */
  readonly verdicts: VerdictChanges;
  /** Aborted by destroy() (or the deps' signal): every drain still running ends at once. */
  readonly #now = new AbortController();
  /** Listeners shared by routes picked by TLS server name (`match`, docs/sni.md). */
  readonly #shared = new SharedTcpListeners();
  readonly #sharedUdp = new SharedUdpListeners();
  readonly #immediate: AbortSignal;
  /** Upstream pools of pooled routes (docs/pools.md); every route dials through its entry here. */
  readonly #pools: RoutePools;

  private constructor(
    config: SluiceConfig,
    private readonly deps: RouteSetDeps,
  ) {
    this.#config = config;
    this.verdicts = deps.verdicts ?? new VerdictChanges(deps.events, deps.clock);
    this.verdicts.watch(() => this.#routes.values());
    this.#immediate = deps.signal ? AbortSignal.any([deps.signal, this.#now.signal]) : this.#now.signal;
    this.#pools = new RoutePools({ clock: deps.clock, events: deps.events, stream: deps.streamDialer, datagram: deps.datagramDialer });
  }

  /** Binds every route; if one fails, the ones already bound are closed and the error names the route. */
  static async start(config: SluiceConfig, deps: RouteSetDeps): Promise<RouteSet> {
    const node = new RouteSet(config, deps);
    node.#shared.plan(config.routes);
    node.#sharedUdp.plan(config.routes);
    await node.#pools.apply(config.routes);
    let started: RouteRuntime<RouteConfig>[];
    try {
      started = await node.#startAll(config.routes);
    } catch (err) {
      node.#pools.close();
      throw err;
    }
    for (const r of started) node.#routes.set(r.name, r);
    return node;
  }

  get config(): SluiceConfig {
    return this.#config;
  }

  /** Which stream datapath carries this node's TCP routes (for status and metrics). */
  get streamDatapathKind(): 'js' | 'native' {
    return this.deps.streamDatapath?.kind ?? 'js';
  }

  /** Which UDP datapath moves this node's datagrams (for status and metrics). */
  get udpDatapathKind(): 'js' | 'native' {
    return this.deps.udpDatapath?.kind ?? 'js';
  }

  /** A pooled route's members and their health (docs/pools.md); undefined for a route with one upstream. */
  pool(name: string): PoolView | undefined {
    return this.#pools.view(name);
  }

  routes(): RouteRuntime<RouteConfig>[] {
    return [...this.#routes.values()];
  }

  route(name: string): RouteRuntime<RouteConfig> | undefined {
    return this.#routes.get(name);
  }

  /**
   * Applies a validated config. New and rebuilt listeners are bound first; if any bind fails,
   * nothing changes and the error is thrown. Then: unchanged `listen` keeps socket and sessions
   * (settings swapped), changed `listen` is rebuilt (old one drains), removed routes drain.
   * Then every live session is judged again: those the new admission refuses end at once.
   */
  async reload(next: SluiceConfig): Promise<ReloadSummary> {
    if (this.#stopping) throw new SluiceError('SLUICE_ERR_CLOSED', 'node is shutting down');
    const diff = diffRoutes(this.#config.routes, next.routes);
    this.#shared.plan(next.routes);
    this.#sharedUdp.plan(next.routes);
    // A range that moves keeps the ports both ranges hold; it binds only the new ones (range-route.ts).
    const moves = await this.#prepareMoves(diff.rebuilt);
    // Pools before listeners: members that remain keep their sessions, new ones take the next
    // (docs/pools.md); undone below if a listener cannot bind.
    await this.#pools.apply(next.routes);
    const rebuilt = diff.rebuilt.filter((r) => !moves.some((m) => m.route === r));
    let fresh: RouteRuntime<RouteConfig>[];
    try {
      fresh = await this.#startAll([...diff.added, ...rebuilt]);
    } catch (err) {
      await Promise.all(moves.map((m) => m.abort()));
      // The running config stays, pools included.
      await this.#pools.apply(this.#config.routes);
      throw err;
    }
    await Promise.all(moves.map((m) => m.commit()));
    const changed = [...diff.changed, ...moves.map((m) => m.route)];
    for (const r of next.routes) {
      const live = this.#routes.get(r.name);
      if (live && !rebuilt.includes(r)) live.update(r, this.#admitter(r));
    }
    for (const name of [...diff.removed, ...rebuilt.map((r) => r.name)]) {
      const old = this.#routes.get(name);
      this.#routes.delete(name);
      if (old) this.#drainInBackground(old, 'route-removed');
    }
    for (const r of fresh) this.#routes.set(r.name, r);
    this.#config = next;
    const summary = {
      added: diff.added.map((r) => r.name),
      removed: diff.removed,
      changed: changed.map((r) => r.name),
      rebuilt: rebuilt.map((r) => r.name),
    };
    this.deps.events.emit({ type: 'config-reloaded', at: this.deps.clock.wallNow(), ...summary });
    // New ACLs (or a new country database) hold for live sessions too, not only for new ones.
    this.verdicts.changed('reload');
    return summary;
  }

  /** Graceful stop: no new sessions, live ones drain until the deadline, then are closed. */
  shutdown(deadlineMs = this.#config.lifecycle.drainTimeoutMs): Promise<void> {
    this.#stopping ??= (async () => {
      const all = [...this.#routes.values()];
      this.#routes.clear();
      await Promise.all([...all.map((r) => this.#drain(r, deadlineMs, 'drain-deadline')), ...this.#draining]);
      this.#pools.close();
    })();
    return this.#stopping;
  }

  /** Immediate stop: every session ends with `shutdown`, also those of a graceful stop or a reload still draining. */
  async destroy(): Promise<void> {
    this.#now.abort();
    const all = [...this.#routes.values()];
    this.#routes.clear();
    this.#stopping ??= Promise.resolve();
    await Promise.all(all.map((r) => this.#closeRoute(r, 'shutdown')));
    await Promise.all(this.#draining);
    this.#pools.close();
  }

  /** Prepares every range route of `rebuilt` that only moves its range; on a failure, aborts those prepared and rejects. */
  async #prepareMoves(rebuilt: readonly RouteConfig[]) {
    const moving = rebuilt.flatMap((r) => {
      const live = this.#routes.get(r.name);
      return live instanceof RangeRoute && live.movesRange(r) ? [{ route: r, live }] : [];
    });
    const settled = await Promise.allSettled(moving.map(async ({ route, live }) => ({ route, ...(await live.prepareMove(route, this.#admitter(route))) })));
    const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((m) => m.abort()));
      throw failed.reason;
    }
    return ok;
  }

  async #startAll(routes: readonly RouteConfig[]): Promise<RouteRuntime<RouteConfig>[]> {
    const results = await Promise.allSettled(routes.map((r) => this.#startRoute(r)));
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (failed.length === 0) return ok;
    await Promise.all(ok.map((r) => r.close('shutdown')));
    const err = failed[0]!;
    throw failed.length === 1 ? err : new SluiceError('SLUICE_ERR_BIND', failed.map((e) => e.message).join('; '), { cause: err });
  }

  /**
   * Admission and flow ids for a route started outside the config (an exposed service's public
   * listener, src/gateway/), so it gets the same ACL, node-wide steps and flow numbering as the
   * node's own routes.
   */
  routeDeps(listener: AdmissionKeys): { admit: Admitter | undefined; nextFlowId: () => number; datapath: UdpDatapath | undefined; streamDatapath: StreamDatapath | undefined } {
    return { admit: this.#admitter(listener), nextFlowId: () => this.nextFlowId(), datapath: this.deps.udpDatapath, streamDatapath: this.deps.streamDatapath };
  }

  /** The next flow number, unique in this process (the agent's sessions toward local services use it too). */
  nextFlowId(): number {
    return ++this.#flowId;
  }

  /** ACL then the node-wide step; compiled per route, again at every reload (the database may change). */
  #admitter(route: AdmissionKeys): Admitter | undefined {
    const steps = [aclAdmitter(route.acl, this.deps.geo?.()), this.deps.crowdsec?.(route), this.deps.admit].filter((a): a is Admitter => a !== undefined);
    return chainAdmitters(steps);
  }

  async #startRoute(route: RouteConfig): Promise<RouteRuntime<RouteConfig>> {
    const { clock, events } = this.deps;
    const admit = this.#admitter(route);
    const nextFlowId = () => ++this.#flowId;
    const { stream: streamDialer, datagram: datagramDialer } = this.#pools.dialersFor(route.name);
    const r = (route.ports ?? 1) > 1
      ? await RangeRoute.start(route, clock, (one, pooled, ticks) =>
          one.listen.transport === 'udp'
            ? UdpRoute.start(one, { clock: ticks, events, admit, nextFlowId, dialer: datagramDialer, datapath: this.deps.udpDatapath, pooled })
            : TcpRoute.start(one, { clock: ticks, events, admit, nextFlowId, dialer: streamDialer, streamDatapath: this.deps.streamDatapath, pooled }))
      : route.listen.transport === 'udp'
        ? this.#sharedUdp.wants(route)
          ? await this.#sharedUdp.start(route, { clock, events, admit, nextFlowId, dialer: datagramDialer, datapath: this.deps.udpDatapath })
          : await UdpRoute.start(route, { clock, events, admit, nextFlowId, dialer: datagramDialer, datapath: this.deps.udpDatapath })
        : this.#shared.wants(route)
          ? await this.#shared.start(route, { clock, events, admit, nextFlowId, dialer: streamDialer })
          : await TcpRoute.start(route, { clock, events, admit, nextFlowId, dialer: streamDialer, streamDatapath: this.deps.streamDatapath });
    events.emit({ type: 'route-up', at: clock.wallNow(), route: route.name, listen: formatListenSpan(route.listen, route.ports), address: r.local, ...(route.origin ? { origin: route.origin } : {}) });
    return r;
  }

  #drainInBackground(r: RouteRuntime<RouteConfig>, reason: EndReason): void {
    const p = this.#drain(r, this.#config.lifecycle.drainTimeoutMs, reason);
    this.#draining.add(p);
    void p.finally(() => this.#draining.delete(p));
  }

  async #drain(r: RouteRuntime<RouteConfig>, deadlineMs: number, reason: EndReason): Promise<void> {
    let timer: { cancel(): void } | undefined;
    let onNow: (() => void) | undefined;
    const deadline = new Promise<void>((resolve) => (timer = this.deps.clock.setTimeout(resolve, deadlineMs)));
    const immediate = this.#immediate;
    const now = new Promise<void>((resolve) => {
      onNow = resolve;
      if (immediate.aborted) resolve();
      else immediate.addEventListener('abort', onNow, { once: true });
    });
    await Promise.race([r.drain(), deadline, now]);
    timer?.cancel();
    immediate.removeEventListener('abort', onNow!);
    await this.#closeRoute(r, immediate.aborted ? 'shutdown' : reason);
  }

  async #closeRoute(r: RouteRuntime<RouteConfig>, reason: EndReason): Promise<void> {
    await r.close(reason);
    this.deps.events.emit({ type: 'route-down', at: this.deps.clock.wallNow(), route: r.name, listen: formatListenSpan(r.config.listen, r.config.ports), address: r.local });
  }
}
