import type { RouteConfig, SluiceConfig } from '../config/types.js';
import type { DockerConfig } from '../config/docker-config.js';
import { shortId, type ContainerInfo } from './container.js';
import { parseGodoxyLabels } from './godoxy-labels.js';
import type { LabelParse, LabelProblem } from './label-route.js';
import { parseSluiceLabels } from './sluice-labels.js';
import { validateLabelRoute } from './validate.js';

/** Why a route from a container was skipped. Every other route keeps running. */
export interface DiscoveryProblem {
  /** `label`: the labels are wrong; `conflict`: the name or address is taken; `bind`: the listener could not bind. */
  readonly kind: 'label' | 'conflict' | 'bind';
  readonly container: string;
  readonly containerId: string;
  readonly route?: string;
  /** The label at fault, for `label` problems. */
  readonly label?: string;
  readonly message: string;
}

/** One line, as `sluice check` prints config problems: `container web (3f2a1c9b0e12) label sluice.routes.dns.listen: ...`. */
export function formatProblem(p: DiscoveryProblem): string {
  const where = p.label !== undefined ? `label ${p.label}` : `route "${p.route ?? '?'}"`;
  return `container ${p.container} (${shortId(p.containerId)}) ${where}: ${p.message}`;
}

/**
 * Every route a container's labels declare, validated as the config file's routes are, with the
 * problems of the ones that are skipped. Pure: the same container and config give the same answer.
 */
export function containerCandidates(
  c: ContainerInfo,
  docker: Pick<DockerConfig, 'sluiceLabels' | 'godoxy'>,
  file: Pick<SluiceConfig, 'acl' | 'geoip' | 'sourcePrefix'>,
): { routes: RouteConfig[]; problems: DiscoveryProblem[] } {
  const parses: LabelParse[] = [];
  if (docker.sluiceLabels) parses.push(parseSluiceLabels(c));
  if (docker.godoxy.enabled) parses.push(parseGodoxyLabels(c, { bind: docker.godoxy.bind }));
  const routes: RouteConfig[] = [];
  const problems: DiscoveryProblem[] = [];
  const add = (p: LabelProblem) => problems.push({ kind: 'label', container: c.name, containerId: c.id, ...p });
  for (const parse of parses) {
    parse.problems.forEach(add);
    for (const r of parse.routes) {
      const v = validateLabelRoute(r, c, file);
      if (v.ok) routes.push(v.route);
      else v.problems.forEach(add);
    }
  }
  return { routes, problems };
}
