import type { Logger } from 'pino';
import { formatHostPort, formatListen } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { isSluiceError } from '../core/errors.js';
import type { RouteConfig, SluiceConfig } from '../config/types.js';
import type { RouteRuntime } from '../listen/route.js';
import type { DockerConfig } from '../config/docker-config.js';
import { shortId, type ContainerInfo } from './container.js';
import { ContainerWatcher, type EngineState } from './container-watcher.js';
import { UnixSocketEngine, type ContainerEngine } from './engine-client.js';
import { mergeRoutes } from './merge.js';
import { containerCandidates, formatProblem, type DiscoveryProblem } from './problems.js';

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

/** A route from labels that is running now, as the admin API lists it. */
export interface DiscoveredRouteView {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly container: string;
  readonly containerId: string;
  readonly labels: 'sluice' | 'godoxy';
}

export interface DiscoveryStatus {
  readonly socket: string;
  readonly engine: {
    readonly state: EngineState;
    readonly name?: string;
    readonly version?: string;
    /** Wall-clock ms of the last full list of running containers. */
    readonly lastSyncAt?: number;
    readonly lastError?: string;
  };
  /** Running containers the engine reported, with or without labels. */
  readonly containers: number;
  readonly routes: readonly DiscoveredRouteView[];
  /** Every route that was skipped, and why: bad labels, conflicts, listeners that could not bind. */
  readonly problems: readonly DiscoveryProblem[];
}

/** First retry of a route whose listener could not bind; doubles up to `docker.reconnect.max`. */
const BIND_RETRY_MS = 1000;

interface Parsed {
  /** The container as it was parsed; a changed container is parsed again. */
  readonly source: ContainerInfo;
  readonly routes: readonly RouteConfig[];
  readonly problems: readonly DiscoveryProblem[];
}

interface Blocked {
  message: string;
  attempts: number;
  /** True once the retry timer fired: the route is tried again at the next apply. */
  due: boolean;
  timer: Timer | undefined;
}

/**
 * Routes from container labels, kept beside the config file's on one node (docs/containers.md).
 * Every change (a container started or stopped, an engine resync, a config reload) recomputes the
 * whole wanted route list (file routes + label routes, merged by `mergeRoutes`) and applies it
 * with `RouteSet.reload`, so unchanged routes keep their sockets and sessions and removed ones
 * drain, exactly as for a file reload. One listener that cannot bind (its port is held by
 * something else) is skipped and retried with backoff; the others are applied.
 */
export class ContainerRoutes {
  #file: SluiceConfig;
  #docker: DockerConfig;
  readonly #watcher: ContainerWatcher;
  readonly #parsed = new Map<string, Parsed>();
  #containers: ReadonlyMap<string, ContainerInfo> = new Map();
  #conflicts: DiscoveryProblem[] = [];
  readonly #blocked = new Map<string, Blocked>();
  readonly #logged = new Set<string>();
  #applyQueued = false;
  #closed = false;

  private constructor(
    file: SluiceConfig,
    docker: DockerConfig,
    private readonly deps: ContainerRoutesDeps,
  ) {
    this.#file = file;
    this.#docker = docker;
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
        .map((r) => ({
          name: r.name,
          listen: formatListen(r.listen),
          upstream: formatHostPort(r.upstream.host, r.upstream.port),
          container: r.origin!.container,
          containerId: r.origin!.containerId,
          labels: r.origin!.labels,
        })),
      problems: this.problems(),
    };
  }

  problems(): DiscoveryProblem[] {
    const labelProblems = [...this.#containers.values()].flatMap((c) => this.#parse(c).problems);
    const bind = [...this.#blocked].flatMap(([key, b]) => {
      const r = this.#candidates().find((x) => routeKey(x) === key);
      return r ? [problemOf(r, 'bind', `cannot listen on ${formatListen(r.listen)}: ${b.message}; retried with backoff`)] : [];
    });
    return [...labelProblems, ...this.#conflicts, ...bind];
  }

  /** Stops following the engine. The routes already applied stay until the node stops. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const b of this.#blocked.values()) b.timer?.cancel();
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
    for (const [key, b] of this.#blocked) {
      if (!present.has(key)) {
        b.timer?.cancel();
        this.#blocked.delete(key);
      }
    }
    const usable = candidates.filter((r) => {
      const b = this.#blocked.get(routeKey(r));
      return !b || b.due;
    });
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
    for (const [key, b] of this.#blocked) {
      if (running.has(key)) {
        b.timer?.cancel();
        this.#blocked.delete(key);
      }
    }
    this.#report(before);
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
        this.#block(r, err.message);
      }
    }
    return summary;
  }

  #block(r: RouteConfig, message: string): void {
    const key = routeKey(r);
    const b = this.#blocked.get(key) ?? { message, attempts: 0, due: false, timer: undefined };
    b.message = message;
    b.attempts++;
    b.due = false;
    b.timer?.cancel();
    const delayMs = Math.min(BIND_RETRY_MS * 2 ** (b.attempts - 1), Math.max(BIND_RETRY_MS, this.#docker.reconnect.maxMs));
    b.timer = this.deps.clock.setTimeout(() => {
      b.timer = undefined;
      b.due = true;
      this.#scheduleApply();
    }, delayMs);
    this.#blocked.set(key, b);
  }

  #running(): Map<string, RouteConfig> {
    return new Map(this.deps.node.routes().flatMap((r) => (r.config.origin ? [[routeKey(r.config), r.config] as const] : [])));
  }

  /** Logs routes that came and went, and each problem once, when it first appears. */
  #report(before: ReadonlyMap<string, RouteConfig>): void {
    const after = this.#running();
    const { log } = this.deps;
    for (const [key, r] of after) {
      if (!before.has(key)) log.info(routeFields(r), 'route from container labels added');
    }
    for (const [key, r] of before) {
      if (!after.has(key)) log.info(routeFields(r), 'route from container labels removed (its sessions drain)');
    }
    const now = new Set<string>();
    for (const p of this.problems()) {
      const line = formatProblem(p);
      now.add(line);
      if (!this.#logged.has(line)) log.error({ container: p.container, containerId: p.containerId, route: p.route, label: p.label }, line);
    }
    this.#logged.clear();
    for (const line of now) this.#logged.add(line);
  }
}

/** Containers worth an inspect when the engine's list leaves out their networking (Podman). */
export function hasRouteLabels(labels: Readonly<Record<string, string>>): boolean {
  return Object.keys(labels).some((k) => k.startsWith('sluice.') || k.startsWith('proxy.'));
}

function routeKey(r: RouteConfig): string {
  return `${r.origin?.containerId ?? ''}/${r.name}`;
}

function problemOf(r: RouteConfig, kind: DiscoveryProblem['kind'], message: string): DiscoveryProblem {
  return { kind, container: r.origin!.container, containerId: r.origin!.containerId, route: r.name, message };
}

function routeFields(r: RouteConfig) {
  return {
    route: r.name,
    listen: formatListen(r.listen),
    upstream: formatHostPort(r.upstream.host, r.upstream.port),
    container: r.origin!.container,
    containerId: shortId(r.origin!.containerId),
    labels: r.origin!.labels,
  };
}
