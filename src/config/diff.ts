import { formatListen } from '../core/address.js';
import type { RouteConfig } from './types.js';
import { sharedListenKey, sharedListenKeys } from './route-match.js';

export interface RouteDiff {
  /** Routes whose name is new. */
  readonly added: RouteConfig[];
  /** Names that are gone. */
  readonly removed: string[];
  /** Same name and same `listen`: keep the socket and live sessions, swap settings. */
  readonly changed: RouteConfig[];
  /** Same name, different `listen`: a new listener; the old one drains. */
  readonly rebuilt: RouteConfig[];
}

/** Classifies the difference between two route lists by name. Unchanged routes appear nowhere. */
export function diffRoutes(before: readonly RouteConfig[], after: readonly RouteConfig[]): RouteDiff {
  const old = new Map(before.map((r) => [r.name, r]));
  const diff: RouteDiff = { added: [], removed: [], changed: [], rebuilt: [] };
  // A route moving between its own listener and a shared one (routing by name) needs a new listener.
  const [sharedBefore, sharedAfter] = [sharedListenKeys(before), sharedListenKeys(after)];
  for (const r of after) {
    const prev = old.get(r.name);
    old.delete(r.name);
    if (!prev) diff.added.push(r);
    else if (formatListen(prev.listen) !== formatListen(r.listen) || prev.ports !== r.ports) diff.rebuilt.push(r);
    else if (sharedBefore.has(sharedListenKey(prev.listen)) !== sharedAfter.has(sharedListenKey(r.listen))) diff.rebuilt.push(r);
    else if (JSON.stringify(prev) !== JSON.stringify(r)) diff.changed.push(r);
  }
  diff.removed.push(...old.keys());
  return diff;
}
