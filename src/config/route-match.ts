import { z } from 'zod';
import { canonicalIp, formatHostPort, parseListenUrl, type ListenAddress } from '../core/address.js';

/**
 * `match` of a route (docs/sni.md): several routes share one `listen` address and Sluice picks
 * one by the TLS ClientHello's server name (and optionally ALPN), without terminating TLS: on
 * TCP from the TLS stream, on UDP from the QUIC Initial packets.
 */
export interface RouteMatch {
  /** Canonical names (lowercase, no trailing dot); `*.example.org` matches any name below example.org. */
  readonly sni: readonly string[];
  /** ALPN protocols; absent = any (also none). */
  readonly alpn?: readonly string[];
}

const NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** The one canonical form of a configured name or `*.` pattern, or undefined when it is neither. */
export function canonicalMatchName(text: string): string | undefined {
  let s = text.trim().toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  const bare = s.startsWith('*.') ? s.slice(2) : s;
  return bare.length > 0 && bare.length <= 253 && NAME.test(bare) ? s : undefined;
}

export const routeMatchSchema = z.strictObject({
  sni: z
    .array(
      z.string().transform((text, ctx) => {
        const name = canonicalMatchName(text);
        if (name === undefined) {
          ctx.addIssue({ code: 'custom', message: `expected a host name such as app.example.org or a wildcard such as *.example.org; got "${text}"` });
          return z.NEVER;
        }
        return name;
      }),
    )
    .min(1, 'needs at least one name'),
  alpn: z.array(z.string().min(1).max(255)).min(1, 'needs at least one protocol, or leave alpn out').optional(),
});

/** The key of a listen address for sharing: transport, canonical IP, port. */
export function sharedListenKey(l: ListenAddress): string {
  return `${l.transport}://${formatHostPort(canonicalIp(l.host)?.address ?? l.host, l.port)}`;
}

/** Listen keys served by a shared (name-routing) listener: addresses where at least one route has `match` (TCP: TLS, UDP: QUIC). */
export function sharedListenKeys(routes: readonly { readonly listen: ListenAddress; readonly match?: RouteMatch }[]): Set<string> {
  return new Set(routes.filter((r) => r.match !== undefined).map((r) => sharedListenKey(r.listen)));
}

interface RawRoute {
  readonly name: string;
  readonly listen: ListenAddress;
  readonly match: { sni?: unknown; alpn?: unknown } | undefined;
  readonly proxyProtocol: unknown;
}

/**
 * Rules of routes sharing an address, on the raw config (reported with path and line): at most one route without `match` (the default) per shared address; a name (for
 * overlapping ALPN) in one route only; one PROXY-header policy per address, because the header
 * is read before the route is known (and on UDP, none accepted at all).
 */
export function checkRouteMatches(
  routesRaw: Record<string, unknown>,
  at: (path: (string | number)[], message: string) => void,
  lineOf: (path: (string | number)[]) => number | undefined,
): void {
  const routes: RawRoute[] = [];
  for (const [name, r] of Object.entries(routesRaw)) {
    if (!r || typeof r !== 'object') continue;
    const o = r as Record<string, unknown>;
    const listen = typeof o.listen === 'string' ? parseListenUrl(o.listen) : undefined;
    if (listen === undefined || typeof listen === 'string') continue;
    const match = o.match && typeof o.match === 'object' ? (o.match as RawRoute['match']) : undefined;
    routes.push({ name, listen, match, proxyProtocol: o.proxyProtocol });
  }
  const where = (r: RawRoute, key: string) => {
    const line = lineOf(['routes', r.name, key]);
    return `route "${r.name}"${line ? ` (line ${line})` : ''}`;
  };
  const groups = new Map<string, RawRoute[]>();
  for (const r of routes) groups.set(sharedListenKey(r.listen), [...(groups.get(sharedListenKey(r.listen)) ?? []), r]);
  for (const [key, group] of groups) {
    if (!group.some((r) => r.match)) continue;
    const defaults = group.filter((r) => !r.match);
    for (const extra of defaults.slice(1)) {
      at(['routes', extra.name, 'listen'], `${key} is shared by name (match) and already has a default route without match: ${where(defaults[0]!, 'listen')}; give this route a match or another address`);
    }
    if (group[0]!.listen.transport === 'udp') {
      for (const r of group) {
        const accept = (proxyPolicy(r.proxyProtocol) as { accept?: unknown } | null)?.accept;
        if (Array.isArray(accept) && accept.length > 0) {
          at(['routes', r.name, 'proxyProtocol', 'accept'], `${key} is shared by QUIC server name (match): PROXY headers in front of client datagrams are not supported there; give this route its own address or drop proxyProtocol.accept`);
        }
      }
    }
    const pp = JSON.stringify(proxyPolicy(group[0]!.proxyProtocol));
    for (const r of group[0]!.listen.transport === 'tcp' ? group.slice(1) : []) {
      if (JSON.stringify(proxyPolicy(r.proxyProtocol)) !== pp) {
        at(['routes', r.name, 'proxyProtocol'], `routes sharing ${key} must have the same proxyProtocol accept, headerTimeout and maxHeaderBytes as ${where(group[0]!, 'proxyProtocol')}: the PROXY header is read before the name picks a route`);
      }
    }
    const claimed = new Map<string, { route: RawRoute; alpn: string[] | undefined }[]>();
    for (const r of group) {
      const sni = Array.isArray(r.match?.sni) ? r.match.sni : [];
      const alpn = Array.isArray(r.match?.alpn) ? r.match.alpn.filter((a): a is string => typeof a === 'string') : undefined;
      sni.forEach((text, i) => {
        const name = typeof text === 'string' ? canonicalMatchName(text) : undefined;
        if (name === undefined) return; // the schema reports it
        const before = claimed.get(name) ?? [];
        const clash = before.find((b) => b.alpn === undefined || alpn === undefined || b.alpn.some((p) => alpn.includes(p)));
        if (clash) {
          const line = lineOf(['routes', clash.route.name, 'match']);
          at(['routes', r.name, 'match', 'sni', i], `"${name}" on ${key} is already matched by route "${clash.route.name}"${line ? ` (line ${line})` : ''}${alpn || clash.alpn ? ' for the same ALPN' : ''}; a name picks one route`);
        }
        claimed.set(name, [...before, { route: r, alpn }]);
      });
    }
  }
}

function proxyPolicy(pp: unknown): unknown {
  if (!pp || typeof pp !== 'object') return null;
  const o = pp as Record<string, unknown>;
  return { accept: o.accept ?? [], headerTimeout: o.headerTimeout ?? null, maxHeaderBytes: o.maxHeaderBytes ?? null };
}
