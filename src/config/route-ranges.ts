/** The parts of a parsed route a range check reads (schema.ts routeListen / routeUpstream). */
interface RangeFields {
  readonly listen: { readonly ports?: number };
  readonly upstream: { readonly ports?: number };
  readonly match?: unknown;
  readonly udp?: { readonly onLimit?: string };
}

/**
 * Checks across a route's keys for port ranges (docs/ranges.md): an upstream range has the
 * listen range's size (offset-mapped), an upstream range needs a listen range, `onLimit: evict-lru` is
 * refused on a range, and `match` (one shared listener, picked by server name) does not combine with a range.
 */
export function checkRouteRanges(routes: Record<string, RangeFields>, at: (path: (string | number)[], message: string) => void): void {
  for (const [name, r] of Object.entries(routes)) {
    const listenPorts = r.listen.ports ?? 1;
    const upPorts = r.upstream.ports;
    if (upPorts !== undefined && upPorts !== listenPorts) {
      at(
        ['routes', name, 'upstream'],
        listenPorts === 1
          ? `an upstream range (${upPorts} ports) needs a listen range of the same size; listen has one port`
          : `the upstream range holds ${upPorts} ports but listen holds ${listenPorts}; give one port (every listen port goes to it) or a range of ${listenPorts}`,
      );
    }
    // Each port's table evicts among its own sessions only, so at a full route cap a port with none could not make room.
    if (r.udp?.onLimit === 'evict-lru' && listenPorts > 1) at(['routes', name, 'udp', 'onLimit'], 'evict-lru is not available on a port range yet (each port could only evict its own sessions); use reject');
    if (r.match !== undefined && listenPorts > 1) at(['routes', name, 'match'], `match (routing by server name) needs a single-port listen; this listen is a range of ${listenPorts} ports`);
  }
}
