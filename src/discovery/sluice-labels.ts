import { parse as parseYaml } from 'yaml';
import { formatHostPort } from '../core/address.js';
import { containerTarget, type ContainerInfo } from './container.js';
import type { LabelParse, LabelProblem, LabelRoute } from './label-route.js';

/**
 * Sluice's own labels (docs/containers.md): `sluice.routes.<name>.<key>=<value>`, where `<key>` is
 * a dotted path of the config file's route keys (`listen`, `udp.idleTimeout`, `acl.allow`,
 * `proxyProtocol.send`, ...), or `sluice.routes.<name>={listen: ..., upstream: ...}` for a whole
 * route as a YAML flow mapping. Route names from labels cannot contain dots: the first dot ends
 * the name.
 */
export const SLUICE_PREFIX = 'sluice.';
const ROUTES_PREFIX = 'sluice.routes.';

/** Keys whose value is text even when it looks like a number (`upstream=5353`, `idleTimeout=30`). */
const TEXT_KEYS = new Set(['listen', 'upstream', 'idleTimeout', 'connectTimeout', 'headerTimeout', 'onLimit', 'send', 'udp', 'unknown']);
/** Keys that take a list: comma-separated, or a YAML flow sequence. */
const LIST_KEYS = new Set(['allow', 'deny', 'accept']);

interface Entry {
  readonly label: string;
  readonly path: string[];
  readonly value: string;
}

export function parseSluiceLabels(c: ContainerInfo): LabelParse {
  const problems: LabelProblem[] = [];
  const byRoute = new Map<string, Entry[]>();
  for (const label of Object.keys(c.labels).sort()) {
    if (!label.startsWith(SLUICE_PREFIX)) continue;
    if (!label.startsWith(ROUTES_PREFIX)) {
      problems.push({ label, message: 'unknown Sluice label; routes are declared as sluice.routes.<name>.<key>' });
      continue;
    }
    const [name = '', ...path] = label.slice(ROUTES_PREFIX.length).split('.');
    if (name === '' || path.some((p) => p === '')) {
      problems.push({ ...(name ? { route: name } : {}), label, message: 'expected sluice.routes.<name>.<key> (no empty parts)' });
      if (name) byRoute.set(name, []); // a route with a malformed label is skipped as a whole
      continue;
    }
    const entries = byRoute.get(name) ?? [];
    entries.push({ label, path, value: c.labels[label]! });
    byRoute.set(name, entries);
  }

  const routes: LabelRoute[] = [];
  for (const [name, entries] of byRoute) {
    if (entries.length === 0 || problems.some((p) => p.route === name)) continue;
    const route = assemble(c, name, entries);
    if ('problems' in route) problems.push(...route.problems);
    else routes.push(route);
  }
  return { routes, problems };
}

function assemble(c: ContainerInfo, name: string, entries: Entry[]): LabelRoute | { problems: LabelProblem[] } {
  const problems: LabelProblem[] = [];
  const raw: Record<string, unknown> = {};
  // Shorter paths first, so a mapping label (`sluice.routes.x.udp={...}`) is in place before a
  // dotted one tries to add to it.
  for (const e of [...entries].sort((a, b) => a.path.length - b.path.length || a.label.localeCompare(b.label))) {
    const value = labelValue(e.path[e.path.length - 1], e.value);
    if (typeof value === 'object' && value !== null && 'error' in value) {
      problems.push({ route: name, label: e.label, message: (value as { error: string }).error });
      continue;
    }
    if (e.path.length === 0 && !isPlainObject(value)) {
      problems.push({ route: name, label: e.label, message: 'a whole route is a YAML flow mapping such as {listen: udp://0.0.0.0:53, upstream: ":53"}' });
      continue;
    }
    if (!setPath(raw, e.path, value)) {
      problems.push({ route: name, label: e.label, message: `sets a key of route "${name}" that another of its labels already sets` });
    }
  }
  const upstream = raw.upstream;
  if (problems.length === 0 && typeof upstream === 'string') {
    const m = /^:?(\d{1,5})$/.exec(upstream.trim());
    if (m) {
      const transport = typeof raw.listen === 'string' && raw.listen.trim().startsWith('udp://') ? 'udp' : 'tcp';
      const target = containerTarget(c, Number(m[1]), transport);
      if (typeof target === 'string') problems.push({ route: name, label: labelOf(entries, name, ['upstream']), message: target });
      else raw.upstream = formatHostPort(target.host, target.port);
    }
  }
  if (problems.length > 0) return { problems };
  return { name, family: 'sluice', raw, labelFor: (path) => labelOf(entries, name, path) };
}

/** The label whose key path is the longest prefix of `path`; a missing key is named as it would be written. */
function labelOf(entries: readonly Entry[], name: string, path: readonly (string | number)[]): string {
  let best: Entry | undefined;
  for (const e of entries) {
    if (e.path.length <= path.length && e.path.every((p, i) => p === String(path[i])) && (!best || e.path.length > best.path.length)) best = e;
  }
  if (best) return best.label;
  return [ROUTES_PREFIX + name, ...path.map(String)].join('.');
}

function labelValue(key: string | undefined, text: string): unknown {
  const t = text.trim();
  const list = key !== undefined && LIST_KEYS.has(key);
  if (t.startsWith('{') || (list && t.startsWith('['))) {
    try {
      return parseYaml(t);
    } catch (err) {
      return { error: `not a valid YAML flow value: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  if (list) return t === '' ? [] : t.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (key !== undefined && TEXT_KEYS.has(key)) return t;
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (t === 'true' || t === 'false') return t === 'true';
  return t;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets `value` at `path`, merging mappings; false when a key would be set twice. */
function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): boolean {
  if (path.length === 0) return mergeInto(obj, value as Record<string, unknown>);
  let at = obj;
  for (const seg of path.slice(0, -1)) {
    const next = at[seg];
    if (next === undefined) at[seg] = {};
    else if (!isPlainObject(next)) return false;
    at = at[seg] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (at[last] === undefined) {
    at[last] = value;
    return true;
  }
  return isPlainObject(at[last]) && isPlainObject(value) && mergeInto(at[last] as Record<string, unknown>, value);
}

function mergeInto(dst: Record<string, unknown>, src: Record<string, unknown>): boolean {
  for (const [k, v] of Object.entries(src)) {
    if (dst[k] === undefined) dst[k] = v;
    else if (!(isPlainObject(dst[k]) && isPlainObject(v) && mergeInto(dst[k] as Record<string, unknown>, v))) return false;
  }
  return true;
}
