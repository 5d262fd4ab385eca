import { canonicalIp, formatListen, parseHostPort, parseListenUrl, type ListenAddress, type Transport } from '../core/address.js';
import { sharedListenKey, sharedListenKeys } from './route-match.js';
import { formatListenSpan, lastPortOf, parseListenSpan } from './port-span.js';

/** One socket the config asks to bind, with the key that asks and who owns it, for messages. */
export interface Binding {
  readonly path: (string | number)[];
  /** `route "dns"`, `agent.connect "wg"`, `admin.listen`, `gateway.listen`. */
  readonly owner: string;
  readonly listen: ListenAddress;
  /** A route with `match`: its address may be shared with other routes (config/route-match.ts). */
  readonly matched?: boolean;
  /** A route's port range (`listen: ...:N-M`): how many ports from `listen.port` on; absent = one. */
  readonly ports?: number;
}

/**
 * Whether two bindings cannot both be bound: same transport and port (never port 0, which picks a
 * free one), and addresses that overlap: equal, or one is the wildcard of the other's family.
 * `::` counts as every address (Node binds it dual-stack), `0.0.0.0` as every IPv4 address.
 */
export function bindingsOverlap(a: ListenAddress, b: ListenAddress, aPorts = 1, bPorts = 1): boolean {
  if (a.transport !== b.transport || a.port === 0 || b.port === 0) return false;
  if (a.port > lastPortOf(b, bPorts) || b.port > lastPortOf(a, aPorts)) return false;
  const [x, y] = [canonicalIp(a.host), canonicalIp(b.host)];
  if (!x || !y) return a.host === b.host;
  if (x.address === y.address || x.address === '::' || y.address === '::') return true;
  return (x.address === '0.0.0.0' && y.family === 4) || (y.address === '0.0.0.0' && x.family === 4);
}

/** Every listener of a raw (not yet validated) config; entries that do not parse are left to the schema. */
export function configBindings(raw: Record<string, unknown>): Binding[] {
  const out: Binding[] = [];
  const entries = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v as Record<string, unknown>) : []);
  const field = (v: unknown, key: string) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined);
  const url = (path: (string | number)[], owner: string, text: unknown) => {
    const l = typeof text === 'string' ? parseListenUrl(text) : undefined;
    if (l && typeof l !== 'string') out.push({ path, owner, listen: l });
  };
  const hostPort = (path: (string | number)[], owner: string, text: unknown, transports: Transport[]) => {
    const hp = typeof text === 'string' ? parseHostPort(text, true) : undefined;
    if (hp && typeof hp !== 'string') for (const transport of transports) out.push({ path, owner, listen: { transport, ...hp } });
  };
  for (const [name, r] of entries(raw.routes)) {
    const text = field(r, 'listen');
    const span = typeof text === 'string' ? parseListenSpan(text) : undefined;
    if (span && typeof span !== 'string' && span.ports) out.push({ path: ['routes', name, 'listen'], owner: `route "${name}"`, listen: span.listen, ports: span.ports });
    else url(['routes', name, 'listen'], `route "${name}"`, text);
    if (field(r, 'match') !== undefined && out.at(-1)?.owner === `route "${name}"`) out[out.length - 1] = { ...out.at(-1)!, matched: true };
  }
  for (const [name, c] of entries(field(raw.agent, 'connect'))) url(['agent', 'connect', name, 'listen'], `agent.connect "${name}"`, field(c, 'listen'));
  hostPort(['admin', 'listen'], 'admin.listen', field(raw.admin, 'listen'), ['tcp']);
  hostPort(['gateway', 'listen'], 'gateway.listen', field(raw.gateway, 'listen'), ['tcp', 'udp']);
  // The gateway's shared name ports are its own listeners (docs/sni.md, "Exposures by name").
  hostPort(['gateway', 'names', 'tls'], 'gateway.names.tls', field(field(raw.gateway, 'names'), 'tls'), ['tcp']);
  hostPort(['gateway', 'names', 'quic'], 'gateway.names.quic', field(field(raw.gateway, 'names'), 'quic'), ['udp']);
  return out;
}

/**
 * Reports, at the later of each pair, every two listeners of one config that cannot both bind
 * (`run` would stop with EADDRINUSE): both owners, both addresses and the line of the earlier one.
 */
export function checkListenOverlaps(
  raw: Record<string, unknown>,
  at: (path: (string | number)[], message: string) => void,
  lineOf: (path: (string | number)[]) => number | undefined,
): void {
  const all = configBindings(raw);
  // Routes on one exact TCP address where one has `match` share a listener; route-match.ts checks them.
  const shared = sharedListenKeys(all.filter((b) => b.matched).map((b) => ({ listen: b.listen, match: { sni: [] } })));
  const bothShare = (a: Binding, b: Binding) =>
    a.path[0] === 'routes' && b.path[0] === 'routes' && sharedListenKey(a.listen) === sharedListenKey(b.listen) && shared.has(sharedListenKey(a.listen));
  for (let i = 1; i < all.length; i++) {
    const b = all[i]!;
    // A name port on gateway.listen's port is reported by checkNamesPorts (expose-names.ts).
    const a = all.slice(0, i).find((p) => p.owner !== b.owner && bindingsOverlap(p.listen, b.listen, p.ports, b.ports) && !bothShare(p, b) && !(isNamePort(b) && p.owner === 'gateway.listen'));
    if (!a) continue;
    const line = lineOf(a.path);
    const same = formatListen(a.listen) === formatListen(b.listen) && a.ports === b.ports;
    const names = isNamePort(a) || isNamePort(b)
      ? ": the gateway's name port is its own, and the node's routes cannot share it (even with match); give them another address or port"
      : '; both cannot be bound';
    at(
      b.path,
      `${spanText(b)} ${same ? 'is already' : 'overlaps'} the listen address of ${a.owner} (${a.path.join('.')}${line ? `, line ${line}` : ''}${same ? '' : `: ${spanText(a)}`})${names}`,
    );
  }
}

function isNamePort(b: Binding): boolean {
  return b.owner.startsWith('gateway.names.');
}

/** A binding's address, with its range. */
function spanText(b: Binding): string {
  return formatListenSpan(b.listen, b.ports);
}
