import type { ClientHello } from '../protocol/tls/client-hello.js';
import type { RouteMatch } from '../config/route-match.js';

/** What the router needs of a route sharing an address: its current `match` (absent = the default). */
export interface NamedRoute {
  readonly config: { readonly match?: RouteMatch };
}

/**
 * How well `pattern` matches the canonical `name`: exact beats any wildcard, a longer wildcard
 * beats a shorter one; -1 = no match. `*.example.org` matches names below example.org at any
 * depth (as nginx does), not example.org itself.
 */
export function nameScore(pattern: string, name: string): number {
  if (pattern === name) return 10_000; // above any wildcard (names are at most 253 characters)
  if (pattern.startsWith('*.') && name.length > pattern.length - 1 && name.endsWith(pattern.slice(1))) return pattern.length;
  return -1;
}

/**
 * Picks the route for a ClientHello among routes sharing one address: the best name match; among
 * equally good ones, a route whose `alpn` lists one of the client's protocols beats one without
 * `alpn`; a route with `alpn` never takes a client offering none of them. No match: the route
 * without `match`, else undefined (refused as `no-route-for-name`).
 */
export function pickRoute<R extends NamedRoute>(routes: Iterable<R>, hello: ClientHello): R | undefined {
  let best: R | undefined;
  let bestScore = -1;
  let fallback: R | undefined;
  for (const r of routes) {
    const m = r.config.match;
    if (m === undefined) {
      fallback ??= r;
      continue;
    }
    if (hello.serverName === undefined) continue;
    if (m.alpn !== undefined && !hello.alpn.some((p) => m.alpn!.includes(p))) continue;
    let score = -1;
    for (const pattern of m.sni) score = Math.max(score, nameScore(pattern, hello.serverName));
    if (score < 0) continue;
    // Score pairs (name, alpn) as one number: the name decides, an ALPN route breaks a tie.
    const total = score * 2 + (m.alpn !== undefined ? 1 : 0);
    if (total > bestScore) [best, bestScore] = [r, total];
  }
  return best ?? fallback;
}
