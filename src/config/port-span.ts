import { formatListen, parseHostPort, parseListenUrl, type HostPort, type ListenAddress } from '../core/address.js';

/** Most ports one range may hold (docs/ranges.md: one socket each, so a cap on fds and start-up time). */
export const MAX_RANGE_PORTS = 10_000;

/** `N-M` at the end of an address: the text with `N` as its port, and how many ports; undefined = one port. */
function splitSpan(text: string): { single: string; count: number } | string | undefined {
  const m = /^(.*):(\d+)-(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  const [first, last] = [Number(m[2]), Number(m[3])];
  if (first === 0 || last === 0) return `port range ${m[2]}-${m[3]} includes port 0; ranges are fixed ports (1-65535)`;
  if (first > 65535 || last > 65535) return `port range ${m[2]}-${m[3]} is out of range (1-65535)`;
  if (last < first) return `port range ${m[2]}-${m[3]} is reversed; write ${m[3]}-${m[2]}`;
  if (last === first) return `port range ${m[2]}-${m[3]} holds one port; write :${m[2]}`;
  const count = last - first + 1;
  if (count > MAX_RANGE_PORTS) return `port range ${m[2]}-${m[3]} holds ${count} ports; at most ${MAX_RANGE_PORTS} per route (split it into several routes)`;
  return { single: `${m[1]}:${first}`, count };
}

/** A `listen` that may end in a port range: `udp://0.0.0.0:27000-27100`. `ports` absent = one port. */
export function parseListenSpan(text: string): { listen: ListenAddress; ports?: number } | string {
  const span = splitSpan(text);
  if (typeof span === 'string') return span;
  const listen = parseListenUrl(span ? span.single : text);
  if (typeof listen === 'string') return listen;
  return span ? { listen, ports: span.count } : { listen };
}

/** An `upstream` that may end in a port range: `10.0.0.5:40000-40999`. `ports` absent = one port. */
export function parseUpstreamSpan(text: string): { upstream: HostPort; ports?: number } | string {
  const span = splitSpan(text);
  if (typeof span === 'string') return span;
  const upstream = parseHostPort(span ? span.single : text);
  if (typeof upstream === 'string') return upstream;
  return span ? { upstream, ports: span.count } : { upstream };
}

/** The last port of a listen that may hold a range. */
export function lastPortOf(listen: ListenAddress, ports: number | undefined): number {
  return listen.port + (ports ?? 1) - 1;
}

/** `udp://0.0.0.0:27000-27100` for a range, `udp://0.0.0.0:27000` for one port. */
export function formatListenSpan(listen: ListenAddress, ports: number | undefined): string {
  return ports && ports > 1 ? `${formatListen(listen)}-${lastPortOf(listen, ports)}` : formatListen(listen);
}
