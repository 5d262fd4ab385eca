import { formatListen } from '../core/address.js';
import { formatListenSpan } from '../config/port-span.js';
import { bindingsOverlap } from '../config/listen-overlap.js';
import type { RouteConfig } from '../config/types.js';
import { shortId } from './container.js';

export interface Skipped {
  readonly route: RouteConfig;
  readonly message: string;
}

export interface Merged {
  /** The file's routes, then the discovered ones that fit, in input order. */
  readonly routes: RouteConfig[];
  readonly skipped: Skipped[];
}

/**
 * Puts discovered routes beside the config file's. The file wins every conflict: a discovered
 * route is skipped when its name is taken, or its listen address is taken or overlapped
 * (`0.0.0.0:53` and `127.0.0.1:53` cannot both bind). Between discovered routes the earlier one
 * in `discovered` wins, so the caller orders them: routes already running first (a new container
 * never takes a route away from a running one), then older containers first.
 */
export function mergeRoutes(file: readonly RouteConfig[], discovered: readonly RouteConfig[]): Merged {
  const routes = [...file];
  const skipped: Skipped[] = [];
  const byName = new Map(file.map((r) => [r.name, r]));
  for (const r of discovered) {
    const sameName = byName.get(r.name);
    if (sameName) {
      skipped.push({ route: r, message: `route name "${r.name}" is already used by ${describe(sameName)}` });
      continue;
    }
    const clash = routes.find((other) => bindingsOverlap(other.listen, r.listen, other.ports, r.ports));
    if (clash) {
      const same = formatListen(clash.listen) === formatListen(r.listen) && !clash.ports;
      skipped.push({ route: r, message: `${formatListen(r.listen)} ${same ? 'is already' : 'overlaps'} the listen address of route "${clash.name}" (${describe(clash)}${clash.ports ? `: ${formatListenSpan(clash.listen, clash.ports)}` : ''})` });
      continue;
    }
    routes.push(r);
    byName.set(r.name, r);
  }
  return { routes, skipped };
}

function describe(r: RouteConfig): string {
  return r.origin ? `container ${r.origin.container} (${shortId(r.origin.containerId)})` : 'the config file';
}
