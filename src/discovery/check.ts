import { formatHostPort, formatListen } from '../core/address.js';
import type { RouteConfig, SluiceConfig } from '../config/types.js';
import type { DockerConfig } from '../config/docker-config.js';
import { shortId } from './container.js';
import { UnixSocketEngine, type ContainerEngine } from './engine-client.js';
import { mergeRoutes } from './merge.js';
import { containerCandidates, formatProblem, type DiscoveryProblem } from './problems.js';
import { hasRouteLabels } from './container-routes.js';

export interface ContainerCheck {
  /** Label routes that would run beside the file's. */
  readonly routes: RouteConfig[];
  readonly problems: DiscoveryProblem[];
  /** For people: one line per route, then one per problem, in `sluice check`'s format. */
  readonly lines: string[];
}

/**
 * One look at the engine's running containers: the routes their labels would add to `config` and
 * every problem, without starting anything. Throws SLUICE_ERR_ENGINE when the engine cannot be
 * reached. For a `check`-style command and for tests.
 */
export async function checkContainers(
  config: SluiceConfig & { docker: DockerConfig },
  signal: AbortSignal,
  engine: ContainerEngine = new UnixSocketEngine(config.docker.socketPath, hasRouteLabels),
): Promise<ContainerCheck> {
  const containers = (await engine.listRunning(signal)).sort((a, b) => a.created - b.created || a.id.localeCompare(b.id));
  const candidates = containers.map((c) => containerCandidates(c, config.docker, config));
  // A running config already holds label routes: only the file's take part.
  const merged = mergeRoutes(config.routes.filter((r) => !r.origin), candidates.flatMap((c) => c.routes));
  const problems: DiscoveryProblem[] = [
    ...candidates.flatMap((c) => c.problems),
    ...merged.skipped.map((s) => ({ kind: 'conflict' as const, container: s.route.origin!.container, containerId: s.route.origin!.containerId, route: s.route.name, message: s.message })),
  ];
  const routes = merged.routes.filter((r) => r.origin);
  const lines = [
    ...routes.map(
      (r) =>
        `container ${r.origin!.container} (${shortId(r.origin!.containerId)}) route "${r.name}": ${formatListen(r.listen)} -> ${formatHostPort(r.upstream.host, r.upstream.port)}`,
    ),
    ...problems.map(formatProblem),
  ];
  return { routes, problems, lines };
}
