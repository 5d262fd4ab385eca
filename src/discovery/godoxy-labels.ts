import { parse as parseYaml } from 'yaml';
import { formatHostPort, type Transport } from '../core/address.js';
import { containerTarget, type ContainerInfo } from './container.js';
import type { LabelParse, LabelProblem, LabelRoute } from './label-route.js';

/**
 * GoDoxy's stream labels (yusing/godoxy, internal/docker/label.go and internal/route), so a GoDoxy
 * user's containers work unchanged. Only stream routes (scheme tcp/udp, or no scheme and a
 * `LISTEN:TARGET` port) become Sluice routes; HTTP and file-server routes are GoDoxy's business
 * and are passed over without a word. Read: `proxy.aliases`, `proxy.exclude`, `proxy.network`,
 * `proxy.<alias>.{scheme,port,host,bind,relay_proxy_protocol_header}`, `proxy.#N.<field>`
 * (N-th alias), `proxy.*.<field>` (every alias; like GoDoxy, it wins over the alias's own label),
 * `proxy.<alias>=<YAML mapping>`, and the list shortcuts `proxy.ports`, `proxy.schemes`, ...
 * Mapping in docs/containers.md.
 */
const NS = 'proxy.';

/** `proxy.<key>` labels that configure the container, not an alias (idle-sleep and the like). */
const CONTAINER_KEYS = new Set([
  'aliases', 'exclude', 'network', 'idle_timeout', 'wake_timeout', 'stop_method', 'stop_timeout', 'stop_signal',
  'start_endpoint', 'depends_on', 'no_loading_page',
]);
/** `proxy.ports=a,b` means `proxy.#1.port=a`, `proxy.#2.port=b`. */
const SHORTCUTS: Readonly<Record<string, string>> = {
  ports: 'port', schemes: 'scheme', protos: 'scheme', protocols: 'scheme', hosts: 'host', binds: 'bind',
  proxy_protocol_headers: 'relay_proxy_protocol_header',
};
const STREAM_FIELDS = new Set(['scheme', 'port', 'host', 'bind', 'relay_proxy_protocol_header']);
const STREAM_SCHEMES: Readonly<Record<string, Transport>> = { tcp: 'tcp', tcp4: 'tcp', tcp6: 'tcp', udp: 'udp', udp4: 'udp', udp6: 'udp' };
const OTHER_SCHEMES = new Set(['http', 'https', 'h2c', 'fileserver']);

interface Field {
  readonly value: string;
  readonly label: string;
}

export interface GodoxyOptions {
  /** Listen address when a route has no `bind` label (`docker.godoxy.bind`). */
  readonly bind: string;
}

export function parseGodoxyLabels(c: ContainerInfo, opts: GodoxyOptions): LabelParse {
  const labels = Object.keys(c.labels).filter((l) => l.startsWith(NS)).sort();
  if (labels.length === 0 || excluded(c.labels[`${NS}exclude`])) return { routes: [], problems: [] };
  const problems: LabelProblem[] = [];
  const aliases = splitList(c.labels[`${NS}aliases`] ?? '');
  if (aliases.length === 0) aliases.push(c.name);
  const fields = new Map<string, Map<string, Field>>();
  const wildcard = new Map<string, Field>();
  const set = (alias: string, field: string, f: Field) => {
    const m = fields.get(alias) ?? new Map<string, Field>();
    m.set(field, f);
    fields.set(alias, m);
  };
  const aliasOf = (ref: string, label: string): string | undefined => {
    if (ref[0] !== '#' && ref[0] !== '$') return ref;
    const n = Number(ref.slice(1));
    if (Number.isInteger(n) && n >= 1 && n <= aliases.length) return aliases[n - 1];
    problems.push({ label, message: `alias reference ${ref} is out of range: there are ${aliases.length} alias(es) (${aliases.join(', ')})` });
    return undefined;
  };

  for (const label of labels) {
    const value = c.labels[label]!;
    const rest = label.slice(NS.length);
    const dot = rest.indexOf('.');
    if (dot < 0) {
      if (CONTAINER_KEYS.has(rest)) continue;
      const field = SHORTCUTS[rest];
      if (field) {
        splitList(value).forEach((v, i) => {
          const alias = aliasOf(`#${i + 1}`, label);
          if (alias !== undefined) set(alias, field, { value: v, label });
        });
        continue;
      }
      const alias = aliasOf(rest, label);
      if (alias === undefined) continue;
      const block = yamlMapping(value);
      if (typeof block === 'string') {
        // A scalar here is a container-level key this reader does not know: not a route.
        if (value.includes(':')) problems.push({ route: alias, label, message: block });
        continue;
      }
      for (const [k, v] of Object.entries(block)) if (STREAM_FIELDS.has(k) && v !== null && typeof v !== 'object') set(alias, k, { value: String(v), label });
      continue;
    }
    const ref = rest.slice(0, dot);
    const field = rest.slice(dot + 1);
    if (!STREAM_FIELDS.has(field)) continue; // HTTP, health check, homepage keys: not for a stream relay
    if (ref === '*') {
      wildcard.set(field, { value, label });
      continue;
    }
    const alias = aliasOf(ref, label);
    if (alias !== undefined) set(alias, field, { value, label });
  }
  if (wildcard.size > 0) for (const alias of new Set([...aliases, ...fields.keys()])) for (const [k, f] of wildcard) set(alias, k, f);

  const routes: LabelRoute[] = [];
  for (const [alias, f] of fields) {
    const r = streamRoute(c, alias, f, opts, c.labels[`${NS}network`]);
    if (r === undefined) continue;
    if ('problems' in r) problems.push(...r.problems);
    else routes.push(r);
  }
  return { routes, problems };
}

function streamRoute(
  c: ContainerInfo,
  alias: string,
  f: ReadonlyMap<string, Field>,
  opts: GodoxyOptions,
  network: string | undefined,
): LabelRoute | { problems: LabelProblem[] } | undefined {
  const name = alias.trim().toLowerCase();
  const fail = (label: string, message: string) => ({ problems: [{ route: name, label, message }] });
  const scheme = f.get('scheme')?.value.trim().toLowerCase() ?? '';
  const port = f.get('port');
  let transport: Transport | undefined = STREAM_SCHEMES[scheme];
  if (scheme === '') {
    if (!port || !/^\s*0*[1-9]\d*\s*:/.test(port.value)) return undefined; // GoDoxy reads it as an HTTP route
    transport = 'tcp';
  } else if (!transport) {
    if (OTHER_SCHEMES.has(scheme)) return undefined;
    return fail(f.get('scheme')!.label, `unknown scheme "${scheme}" (stream routes use tcp or udp)`);
  }
  if (!port) return fail(`${NS}${alias}.port`, `a ${transport} route needs proxy.${alias}.port as LISTEN:TARGET`);
  const ports = parsePort(port.value);
  if (typeof ports === 'string') return fail(port.label, ports);
  const relay = f.get('relay_proxy_protocol_header');
  const relayOn = relay !== undefined && /^(true|1|yes|on)$/i.test(relay.value.trim());
  if (relayOn && transport !== 'tcp') return fail(relay.label, 'relay_proxy_protocol_header is only supported for tcp routes');

  const bindField = f.get('bind');
  const bind = bindField?.value.trim() || (scheme.endsWith('6') ? '::' : opts.bind);
  const host = f.get('host');
  let upstream: string;
  if (host && host.value.trim() !== '') {
    upstream = formatHostPort(host.value.trim(), ports.target);
  } else {
    // As GoDoxy does: a port published on the host, written on a container with its own
    // address, means the container's port behind it.
    const onOwnAddress = !c.hostNetwork && Object.keys(c.networks).length > 0;
    const published = onOwnAddress ? c.ports.find((p) => p.publicPort === ports.target && p.type === transport) : undefined;
    const target = containerTarget(c, published?.privatePort ?? ports.target, transport, network);
    if (typeof target === 'string') return fail(port.label, target);
    upstream = formatHostPort(target.host, target.port);
  }
  const raw: Record<string, unknown> = {
    listen: `${transport}://${formatHostPort(bind, ports.listen)}`,
    upstream,
    ...(relayOn ? { proxyProtocol: { send: 'v2' } } : {}),
  };
  const labelFor = (path: readonly (string | number)[]): string => {
    switch (path[0]) {
      case 'listen':
        return bindField?.label ?? port.label;
      case 'upstream':
        return host?.label ?? port.label;
      case 'proxyProtocol':
        return relay?.label ?? `${NS}${alias}`;
      default:
        return `${NS}${alias}`;
    }
  };
  return { name, family: 'godoxy', raw, labelFor };
}

/** GoDoxy's `[LISTEN:]TARGET`; an absent or empty LISTEN is 0 (a free port). */
function parsePort(text: string): { listen: number; target: number } | string {
  const parts = text.trim().split(':');
  if (parts.length > 2) return `expected [LISTEN:]TARGET, got "${text}"`;
  const [listenText, targetText] = parts.length === 1 ? ['0', parts[0]!] : [parts[0] === '' ? '0' : parts[0]!, parts[1]!];
  const listen = Number(listenText);
  const target = Number(targetText);
  if (!/^\d+$/.test(listenText) || listen > 65535) return `listening port "${listenText}" is not a port number (0-65535)`;
  if (!/^\d+$/.test(targetText) || target < 1 || target > 65535) return `target port "${targetText}" is not a port number (1-65535)`;
  return { listen, target };
}

function excluded(value: string | undefined): boolean {
  if (value === undefined) return false;
  return splitList(value).some((v) => /^(true|t|1|yes|proxy|all)$/i.test(v));
}

function splitList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function yamlMapping(text: string): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = parseYaml(text.replace(/\t/g, '  '));
  } catch (err) {
    return `not a YAML mapping: ${(err as Error).message.split('\n')[0]}`;
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) return 'expected a YAML mapping of route fields';
  return v as Record<string, unknown>;
}
