import type { RouteRuntime } from '../listen/route.js';
import { routeView, type RouteAbout, type RouteView } from '../admin/views.js';
import type { RouteTraffic } from '../admin/route-traffic.js';
import type { AgentStatus } from './agent-status.js';
import type { PublishedRoute } from '../gateway/gateway.js';
import type { PoolView } from '../upstream/pool/pool.js';

/** The gateway's published services (Gateway.published), listed with the routes. */
export interface PublishedSource {
  published(): readonly PublishedRoute[];
  agents(): readonly { readonly state: string }[];
}

export interface ServedRoutesDeps {
  /** The node's routes right now (empty before the node has started). */
  readonly routes: () => readonly RouteRuntime[];
  readonly gateway: () => PublishedSource | undefined;
  readonly agent: () => AgentStatus | undefined;
  /** A config route's pool, when it has one (docs/pools.md). */
  readonly pool?: (route: string) => PoolView | undefined;
}

/**
 * Every listener this process serves flows on: the node's routes, the services agents published
 * on this gateway (`<agent>/<service>`), and the agent's connect listeners (`connect/<name>`).
 * The admin API, metrics, flow records and the live stream all read `all()`, so a published
 * service is seen, counted and recorded like a route. Read lazily: nothing is kept.
 */
export class ServedRoutes {
  constructor(private readonly deps: ServedRoutesDeps) {}

  all(): readonly RouteRuntime[] {
    const connect = this.deps.agent()?.connectRoutes ?? [];
    const published = this.deps.gateway()?.published() ?? [];
    const routes = this.deps.routes();
    if (connect.length === 0 && published.length === 0) return routes;
    return [...routes, ...published.map((p) => p.route), ...connect];
  }

  /** The body of `GET /api/routes` (docs/admin.md): each route with its kind, state and traffic. */
  views(traffic: RouteTraffic): RouteView[] {
    const about = new Map<RouteRuntime, RouteAbout>();
    for (const p of this.deps.gateway()?.published() ?? []) {
      about.set(p.route, { kind: 'published', agent: p.agent, state: p.stale ? 'stale' : p.agentState === 'attached' ? 'up' : 'agent-detached', ...(p.pool ? { pool: p.pool.view() } : {}) });
    }
    for (const r of this.deps.agent()?.connectRoutes ?? []) about.set(r, { kind: 'connect' });
    for (const r of this.deps.routes()) {
      const pool = this.deps.pool?.(r.name);
      if (pool) about.set(r, { kind: 'route', pool });
    }
    return this.all().map((r) => routeView(r, about.get(r), traffic.of(r)));
  }

  /** The gateway's part of /api/health: agents attached, services published. */
  gatewaySummary(): { agents: number; published: number } | undefined {
    const g = this.deps.gateway();
    return g && { agents: g.agents().filter((a) => a.state === 'attached').length, published: g.published().length };
  }
}
