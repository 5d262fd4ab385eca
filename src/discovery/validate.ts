import { parseConfig } from '../config/load.js';
import type { RouteConfig, RouteOrigin, SluiceConfig } from '../config/types.js';
import type { ContainerInfo } from './container.js';
import type { LabelProblem, LabelRoute } from './label-route.js';

export type Validated = { ok: true; route: RouteConfig } | { ok: false; problems: LabelProblem[] };

/**
 * Validates a label route with the config file's own parser (same schema, same cross-key checks,
 * same defaults), as if it were the only route of a file that has `base`'s top-level `acl`,
 * `geoip` and `sourcePrefix`, so it inherits what a file route would. JSON is YAML, so the route goes in as text and
 * nothing of the parser has to be duplicated here. Problems name the label that caused them.
 */
export function validateLabelRoute(r: LabelRoute, c: ContainerInfo, base: Pick<SluiceConfig, 'acl' | 'geoip' | 'sourcePrefix'>): Validated {
  const doc = {
    routes: { [r.name]: r.raw },
    ...(base.acl ? { acl: base.acl } : {}),
    ...(base.geoip ? { geoip: base.geoip } : {}),
    ...(base.sourcePrefix ? { sourcePrefix: base.sourcePrefix } : {}),
  };
  const parsed = parseConfig(JSON.stringify(doc));
  if (!parsed.ok) {
    const prefix = `routes.${r.name}`;
    return {
      ok: false,
      problems: parsed.issues.map((issue) => {
        const inRoute = issue.path === prefix || issue.path.startsWith(`${prefix}.`);
        const path = inRoute ? issue.path.slice(prefix.length + 1).split('.').filter((p) => p !== '') : [];
        const label = r.labelFor(path);
        return { route: r.name, label, message: keyed(label, path, issue.message) };
      }),
    };
  }
  const origin: RouteOrigin = { kind: 'container', container: c.name, containerId: c.id, labels: r.family };
  return { ok: true, route: Object.freeze({ ...parsed.config.routes[0]!, origin: Object.freeze(origin) }) };
}

/** A problem inside a mapping label (or a GoDoxy label that maps to another key) names the key too. */
function keyed(label: string, path: readonly string[], message: string): string {
  const key = path.join('.');
  return key === '' || label.endsWith(`.${key}`) ? message : `${key}: ${message}`;
}
