import type { Logger } from 'pino';
import { formatListen } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { isSluiceError } from '../core/errors.js';
import type { RouteConfig, SluiceConfig } from '../config/types.js';
import type { RouteRuntime } from '../listen/route.js';
import type { DockerConfig } from '../config/docker-config.js';
import type { ContainerInfo } from './container.js';
import { ContainerWatcher } from './container-watcher.js';
import { UnixSocketEngine, type ContainerEngine } from './engine-client.js';
import { mergeRoutes } from './merge.js';
import { containerCandidates, type DiscoveryProblem } from './problems.js';
import { BindRetries } from './bind-retries.js';
import { discoveredRouteView, DiscoveryLog, problemOf, routeKey, type DiscoveryStatus } from './discovered-route-status.js';

export type { DiscoveredRouteView, DiscoveryStatus } from './discovered-route-status.js';

export interface ContainerRoutesDeps {
  readonly clock: Clock;
  readonly log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  readonly node: RouteReloadTarget;
  /**
   * Runs `fn` after every reload already queued and before any queued later (the root's reload
   * queue), so a container event and a SIGHUP never reload the node at the same time.
   */
  readonly serialize: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Default: the engine at `docker.socket`. */
  readonly engine?: ContainerEngine;
}

/** What a reload of the running routes changed, by route name. */
export interface ReloadSummary {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
  readonly rebuilt: string[];
}

/** The running routes as container discovery drives them (the root's route set). */
export interface RouteReloadTarget {
  readonly config: SluiceConfig;
  /** Applies a validated config; throws (nothing changed) when a new listener cannot bind. */
  reload(next: SluiceConfig): Promise<ReloadSummary>;
  routes(): readonly RouteRuntime<RouteConfig>[];
}

interface Parsed {
  /** The container as it was parsed; a changed container is parsed again. */
  readonly source: ContainerInfo;
  readonly routes: readonly RouteConfig[];
  readonly problems: readonly DiscoveryProblem[];
}

/**
 * Routes from container labels, kept beside the config file's on one node (docs/containers.md).
 * Every change (a container started or stopped, an engine resync, a config reload) recomputes the
 * whole wanted route list (file routes + label routes, merged by `mergeRoutes`) and applies it
 * with `RouteSet.reload`, so unchanged routes keep their sockets and sessions and removed ones
 * drain, exactly as for a file reload. One listener that cannot bind (its port is held by
 * something else) is skipped and retried with backoff (bind-retries.ts); the others are applied.
 * What it shows and logs is built in discovered-route-status.ts.
 */
export class ContainerRoutes {
  #file: SluiceConfig;
  #docker: DockerConfig;
  readonly #watcher: ContainerWatcher;
  readonly #parsed = new Map<string, Parsed>();
  #containers: ReadonlyMap<string, ContainerInfo> = new Map();
  #conflicts: DiscoveryProblem[] = [];
  readonly #binds: BindRetries;
  readonly #log: DiscoveryLog;
  #applyQueued = false;
  #closed = false;

  private constructor(
    file: SluiceConfig,
    docker: DockerConfig,
    private readonly deps: ContainerRoutesDeps,
  ) {
    this.#file = file;
    this.#docker = docker;
    this.#binds = new BindRetries(deps.clock, docker.reconnect.maxMs, () => this.#scheduleApply());
    this.#log = new DiscoveryLog(deps.log);
    const engine = deps.engine ?? new UnixSocketEngine(docker.socketPath, hasRouteLabels);
    this.#watcher = new ContainerWatcher(engine, docker.reconnect, deps.clock, {
      changed: (containers) => {
        this.#containers = new Map(containers);
        this.#scheduleApply();
      },
      connected: (identity, n) => deps.log.info({ socket: docker.socketPath, engine: identity.engine, version: identity.version, containers: n }, 'container engine connected'),
      lost: (err, retryInMs, attempt) => {
        const level = attempt === 1 ? 'warn' : 'debug';
        deps.log[level]({ socket: docker.socketPath, err: err instanceof Error ? err.message : err, retryInMs }, 'container engine unreachable; routes from labels stay as they are until it is back');
      },
    });
  }

  /** Starts following the engine of `file.docker`. Never throws for an unreachable engine: it retries. */
  static start(file: SluiceConfig & { docker: DockerConfig }, deps: ContainerRoutesDeps): ContainerRoutes {
    const r = new ContainerRoutes(file, file.docker, deps);
    r.#watcher.start();
    return r;
  }

  /**
   * Applies a new config file with the label routes merged in (the root's reload, already serialised).
   * Label routes that the new file displaces (same name, same or overlapping address) are removed
   * first, so the file's routes can bind their addresses. Throws what `RouteSet.reload` throws
   * for the file's own routes; the running config then stays.
   * `docker.socket` and `docker.reconnect` are read at start only; the label options apply here.
   */
  async reloadFile(file: SluiceConfig): Promise<ReloadSummary> {
    const prev = { file: this.#file, docker: this.#docker };
    this.#file = file;
    if (file.docker) this.#docker = { ...this.#docker, sluiceLabels: file.docker.sluiceLabels, godoxy: file.docker.godoxy };
    this.#parsed.clear(); // the top-level acl and geoip, inherited by label routes, may have changed
    try {
      const wanted = new Set(this.#wanted().routes.map(routeKey));
      const running = this.deps.node.config;
      const displaced = running.routes.filter((r) => r.origin && !wanted.has(routeKey(r)));
      if (displaced.length > 0) await this.deps.node.reload({ ...running, routes: running.routes.filter((r) => !displaced.includes(r)) });
      return await this.#apply();
    } catch (err) {
      this.#file = prev.file;
      this.#docker = prev.docker;
      this.#parsed.clear();
      this.#scheduleApply();
      throw err;
    }
  }

  /** Label routes, engine state and every problem, for the admin API and `sluice check`. */
  status(): DiscoveryStatus {
    const w = this.#watcher;
    return {
      socket: this.#docker.socketPath,
      engine: {
        state: w.state,
        ...(w.identity ? { name: w.identity.engine, version: w.identity.version } : {}),
        ...(w.lastSyncAt !== undefined ? { lastSyncAt: w.lastSyncAt } : {}),
        ...(w.lastError !== undefined ? { lastError: w.lastError } : {}),
      },
      containers: this.#containers.size,
      routes: this.deps.node
        .routes()
        .flatMap((r) => (r.config.origin ? [r.config] : []))
        .map(discoveredRouteView),
      problems: this.problems(),
    };
  }

  problems(): DiscoveryProblem[] {
    const labelProblems = [...this.#containers.values()].flatMap((c) => this.#parse(c).problems);
    const bind = [...this.#binds.failures()].flatMap(([key, message]) => {
      const r = this.#candidates().find((x) => routeKey(x) === key);
      return r ? [problemOf(r, 'bind', `cannot listen on ${formatListen(r.listen)}: ${message}; retried with backoff`)] : [];
    });
    return [...labelProblems, ...this.#conflicts, ...bind];
  }

  /** Stops following the engine. The routes already applied stay until the node stops. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#binds.close();
    await this.#watcher.close();
  }

  #scheduleApply(): void {
    if (this.#applyQueued || this.#closed) return;
    this.#applyQueued = true;
    // Events that arrive while this waits for the chain are folded into this one apply.
    this.deps
      .serialize(async () => {
        this.#applyQueued = false;
        if (!this.#closed) await this.#apply();
      })
      .catch((err: unknown) => this.deps.log.error({ err: err instanceof Error ? err.message : err }, 'could not apply routes from container labels'));
  }

  #parse(c: ContainerInfo): Parsed {
    const cached = this.#parsed.get(c.id);
    if (cached && cached.source === c) return cached;
    const parsed = { source: c, ...containerCandidates(c, this.#docker, this.#file) };
    this.#parsed.set(c.id, parsed);
    return parsed;
  }

  /** Every valid label route of the running containers, in priority order: running ones first, then older containers. */
  #candidates(): RouteConfig[] {
    for (const id of this.#parsed.keys()) if (!this.#containers.has(id)) this.#parsed.delete(id);
    const running = new Set(this.deps.node.routes().flatMap((r) => (r.config.origin ? [routeKey(r.config)] : [])));
    const containers = [...this.#containers.values()].sort((a, b) => a.created - b.created || a.id.localeCompare(b.id));
    const all = containers.flatMap((c) => this.#parse(c).routes);
    return [...all.filter((r) => running.has(routeKey(r))), ...all.filter((r) => !running.has(routeKey(r)))];
  }

  #wanted(): { routes: RouteConfig[]; conflicts: DiscoveryProblem[] } {
    const candidates = this.#candidates();
    const present = new Set(candidates.map(routeKey));
    this.#binds.forget((key) => !present.has(key));
    const usable = candidates.filter((r) => this.#binds.mayTry(routeKey(r)));
    const merged = mergeRoutes(this.#file.routes, usable);
    return { routes: merged.routes, conflicts: merged.skipped.map((s) => problemOf(s.route, 'conflict', s.message)) };
  }

  async #apply(): Promise<ReloadSummary> {
    const before = this.#running();
    const { routes, conflicts } = this.#wanted();
    this.#conflicts = conflicts;
    let summary: ReloadSummary;
    try {
      summary = await this.deps.node.reload({ ...this.#file, routes });
    } catch (err) {
      if (!isSluiceError(err, 'SLUICE_ERR_BIND')) throw err;
      summary = await this.#applyOneByOne(routes);
    }
    const running = this.#running();
    this.#binds.forget((key) => running.has(key));
    this.#log.report(before, this.#running(), this.problems());
    return summary;
  }

  /**
   * A listener failed to bind: apply everything that is already running, then each new label
   * route alone; the ones that still fail wait for a retry. A failing file route is not skipped:
   * that error is thrown, as for any reload.
   */
  async #applyOneByOne(routes: readonly RouteConfig[]): Promise<ReloadSummary> {
    const running = new Map(this.deps.node.config.routes.map((r) => [r.name, r]));
    const isNew = (r: RouteConfig) => {
      const old = running.get(r.name);
      return r.origin !== undefined && (!old || formatListen(old.listen) !== formatListen(r.listen));
    };
    const settled = routes.filter((r) => !isNew(r));
    let summary = await this.deps.node.reload({ ...this.#file, routes: settled });
    for (const r of routes.filter(isNew)) {
      try {
        summary = await this.deps.node.reload({ ...this.#file, routes: [...settled, r] });
        settled.push(r);
      } catch (err) {
        if (!isSluiceError(err, 'SLUICE_ERR_BIND')) throw err;
        this.#binds.block(routeKey(r), err.message);
      }
    }
    return summary;
  }

  #running(): Map<string, RouteConfig> {
    return new Map(this.deps.node.routes().flatMap((r) => (r.config.origin ? [[routeKey(r.config), r.config] as const] : [])));
  }
}

/** Containers worth an inspect when the engine's list leaves out their networking (Podman). */
export function hasRouteLabels(labels: Readonly<Record<string, string>>): boolean {
  return Object.keys(labels).some((k) => k.startsWith('sluice.') || k.startsWith('proxy.'));
}
