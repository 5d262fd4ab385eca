import type { Logger } from 'pino';
import { formatHostPort, formatListen } from '../core/address.js';
import type { RouteConfig } from '../config/types.js';
import { shortId } from './container.js';
import type { EngineState } from './container-watcher.js';
import { formatProblem, type DiscoveryProblem } from './problems.js';

/*
 * How routes from container labels are shown (docs/containers.md): in the admin API's status, as
 * problems, and in the log. The functions take label routes only (`origin` set) and are pure; the
 * log keeps the problems it has written so each is logged once, when it first appears.
 */

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

/** A label route's identity across applies: the same name from another container is another route. */
export function routeKey(r: RouteConfig): string {
  return `${r.origin?.containerId ?? ''}/${r.name}`;
}

export function problemOf(r: RouteConfig, kind: DiscoveryProblem['kind'], message: string): DiscoveryProblem {
  return { kind, container: r.origin!.container, containerId: r.origin!.containerId, route: r.name, message };
}

export function discoveredRouteView(r: RouteConfig): DiscoveredRouteView {
  return {
    name: r.name,
    listen: formatListen(r.listen),
    upstream: formatHostPort(r.upstream.host, r.upstream.port),
    container: r.origin!.container,
    containerId: r.origin!.containerId,
    labels: r.origin!.labels,
  };
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

/** Logs label routes that came and went, and each problem once, when it first appears. */
export class DiscoveryLog {
  readonly #logged = new Set<string>();

  constructor(private readonly log: Pick<Logger, 'info' | 'error'>) {}

  /** `before` and `after`: the running label routes by routeKey; `problems`: all current ones. */
  report(before: ReadonlyMap<string, RouteConfig>, after: ReadonlyMap<string, RouteConfig>, problems: readonly DiscoveryProblem[]): void {
    const { log } = this;
    for (const [key, r] of after) {
      if (!before.has(key)) log.info(routeFields(r), 'route from container labels added');
    }
    for (const [key, r] of before) {
      if (!after.has(key)) log.info(routeFields(r), 'route from container labels removed (its sessions drain)');
    }
    const now = new Set<string>();
    for (const p of problems) {
      const line = formatProblem(p);
      now.add(line);
      if (!this.#logged.has(line)) log.error({ container: p.container, containerId: p.containerId, route: p.route, label: p.label }, line);
    }
    this.#logged.clear();
    for (const line of now) this.#logged.add(line);
  }
}
