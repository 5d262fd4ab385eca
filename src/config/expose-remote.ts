import { formatHostPort, type HostPort, type ListenAddress } from '../core/address.js';
import { formatListenSpan, parseListenSpan, parseUpstreamSpan } from './port-span.js';
import { canonicalMatchName } from './route-match.js';

/**
 * `agent.expose.<name>.remote` and `.local` beyond one port (docs/expose.md): a port range
 * (`udp://0.0.0.0:50000-50099`, local `127.0.0.1:50000-50099` or one port), or a name on the
 * gateway's shared port (`tls://app.example.org` for TCP, `quic://app.example.org` for UDP).
 */
export interface ExposeRemote {
  /** For a name: the transport, the unspecified address and port 0 (the gateway's shared port is used). */
  readonly remote: ListenAddress;
  /** How many ports from `remote.port` on; absent = one. */
  readonly ports?: number;
  /** Canonical lowercase name or `*.` wildcard, for `tls://` and `quic://`. */
  readonly serverName?: string;
}

/** Parses a `remote`; a string is the problem, for the config error. */
export function parseExposeRemote(text: string): ExposeRemote | string {
  const named = /^(tls|quic):\/\/(.*)$/.exec(text.trim());
  if (named) {
    const name = canonicalMatchName(named[2]!);
    if (name === undefined || named[2]!.includes(':')) {
      return `${named[1]}:// takes a server name such as app.example.org or *.example.org (the gateway's shared port is used, no port here); got "${named[2]}"`;
    }
    return { remote: { transport: named[1] === 'tls' ? 'tcp' : 'udp', host: '0.0.0.0', port: 0 }, serverName: name };
  }
  const r = parseListenSpan(text);
  if (typeof r === 'string') return `${r} (or tls://name, quic://name for the gateway's shared port)`;
  return r.ports ? { remote: r.listen, ports: r.ports } : { remote: r.listen };
}

/** Parses a `local`: `host:port` or `host:N-M`. */
export function parseExposeLocal(text: string): { local: HostPort; ports?: number } | string {
  const r = parseUpstreamSpan(text);
  if (typeof r === 'string') return r;
  if (r.upstream.port === 0) return 'local port 0 is not a service port';
  return r.ports ? { local: r.upstream, ports: r.ports } : { local: r.upstream };
}

/** The problem of a `local` / `remote` pair of sizes, or undefined when they fit. */
export function rangeSizesProblem(localPorts: number | undefined, remote: ExposeRemote): string | undefined {
  const l = localPorts ?? 1;
  const r = remote.ports ?? 1;
  if (l > 1 && remote.serverName !== undefined) return `local is a range of ${l} ports but a name (${remote.serverName}) reaches one service; give one local port`;
  if (l > 1 && r === 1) return `local is a range of ${l} ports but remote is one port; give remote a range of ${l} ports or local one port`;
  if (l > 1 && l !== r) return `local holds ${l} ports but remote holds ${r}; give a range of ${r} ports or one port (every public port goes to it)`;
  return undefined;
}

interface RawExpose {
  readonly remote?: ExposeRemote;
}

/** Two services of one agent asking for overlapping public ports of one transport: a config error on the second. */
export function checkExposeRanges(expose: Record<string, RawExpose>, at: (path: (string | number)[], message: string) => void): void {
  const taken: { name: string; transport: string; first: number; last: number }[] = [];
  for (const [name, e] of Object.entries(expose)) {
    const r = e.remote;
    if (!r || r.serverName !== undefined || r.remote.port === 0) continue;
    const first = r.remote.port;
    const last = first + (r.ports ?? 1) - 1;
    const other = taken.find((t) => t.transport === r.remote.transport && t.first <= last && first <= t.last);
    if (other) {
      const span = (a: number, b: number) => (a === b ? `port ${a}` : `ports ${a}-${b}`);
      const message = first === last && other.first === other.last
        ? `${r.remote.transport} port ${first} is already asked for by "${other.name}"`
        : `${r.remote.transport} ${span(first, last)} overlap ${span(other.first, other.last)} of "${other.name}"`;
      at(['agent', 'expose', name, 'remote'], message);
    } else taken.push({ name, transport: r.remote.transport, first, last });
  }
}

/** An exposure's `remote` as written: `udp://0.0.0.0:50000-50099`, `tls://app.example.org`, `tcp://0.0.0.0:22`; null when peers only. */
export function formatExposeRemote(c: { readonly remote?: ListenAddress; readonly remotePorts?: number; readonly serverName?: string }): string | null {
  if (c.remote === undefined) return null;
  if (c.serverName !== undefined) return `${c.remote.transport === 'tcp' ? 'tls' : 'quic'}://${c.serverName}`;
  return formatListenSpan(c.remote, c.remotePorts);
}

/** An exposure's `local` as written: `127.0.0.1:50000-50099` for a local range. */
export function formatExposeLocal(c: { readonly local: HostPort; readonly remotePorts?: number; readonly localRange?: boolean }): string {
  const one = formatHostPort(c.local.host, c.local.port);
  return c.localRange && c.remotePorts ? `${one}-${c.local.port + c.remotePorts - 1}` : one;
}
