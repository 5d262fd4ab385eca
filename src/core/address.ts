import net from 'node:net';

export type Family = 4 | 6;
export type Transport = 'tcp' | 'udp';

/** An IP endpoint whose address has passed `canonicalIp`. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly family: Family;
}

/** A host that may still be a name (upstreams written in the config). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ListenAddress extends HostPort {
  readonly transport: Transport;
}

/**
 * The one canonicalisation function every address passes before any check, key or record:
 * IPv4-mapped IPv6 (`::ffff:127.0.0.1`, in any spelling) becomes plain IPv4, IPv6 is lowercased
 * and compressed, a zone (`%eth0`) is dropped. Returns undefined for anything that is not an IP.
 * Embedded-IPv4 forms other than mapped (compatible, NAT64, 6to4) are kept as IPv6 here; deny
 * checks widen them separately (admission/), because an allow rule must not be borrowed that way.
 */
export function canonicalIp(input: string): { address: string; family: Family } | undefined {
  let s = input.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const kind = net.isIP(s);
  if (kind === 4) return { address: normaliseV4(s), family: 4 };
  if (kind !== 6) return undefined;
  const bytes = ipv6Bytes(s);
  if (!bytes) return undefined;
  if (isMappedV4(bytes)) return { address: `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`, family: 4 };
  return { address: formatV6(bytes), family: 6 };
}

function normaliseV4(s: string): string {
  // net.isIP accepts only dotted-decimal without leading zeros, so this is already canonical.
  return s;
}

function isMappedV4(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** 16 bytes of an IPv6 literal (no brackets, no zone), or undefined. */
export function ipv6Bytes(s: string): Uint8Array | undefined {
  if (net.isIPv6(s) === false) return undefined;
  let text = s.toLowerCase();
  const out = new Uint8Array(16);
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  let v4: number[] | undefined;
  if (tail.includes('.')) {
    v4 = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const hs = head ? head.split(':') : [];
  const rs = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? hs : [...hs, ...Array(8 - hs.length - rs.length).fill('0'), ...rs];
  if (groups.length !== 8) return undefined;
  groups.forEach((g: string, i: number) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (v4) out.set(v4, 12);
  return out;
}

/** RFC 5952 text form of 16 bytes. */
export function formatV6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  return formatV6Groups(g);
}

/** RFC 5952 text form of eight 16-bit groups: lowercase, the longest run of two or more zero groups as `::`. */
export function formatV6Groups(g: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** `host:port` or `[v6]:port` for people and records. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** Parses `host:port`, `[v6]:port`; `allowZeroPort` for listeners (port 0 = pick a free one). */
export function parseHostPort(text: string, allowZeroPort = false): HostPort | string {
  const m = HOST_PORT.exec(text.trim());
  if (!m) {
    return /:.*:/.test(text) && !text.includes('[')
      ? 'expected host:port; an IPv6 address goes in brackets, quoted in YAML: "[::1]:53"'
      : 'expected host:port (IPv6 as [addr]:port)';
  }
  const rawHost = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && !allowZeroPort)) return `port ${m[3]} is out of range (1-65535)`;
  if (m[1] !== undefined) {
    const ip = canonicalIp(rawHost);
    if (!ip || ip.family !== 6) return `"${rawHost}" is not an IPv6 address`;
    return { host: ip.address, port };
  }
  const ip = canonicalIp(rawHost);
  if (ip) return { host: ip.address, port };
  if (/^[\d.]+$/.test(rawHost)) return `"${rawHost}" is not a valid IPv4 address`;
  if (!HOSTNAME.test(rawHost)) return `"${rawHost}" is not a valid hostname`;
  return { host: rawHost.toLowerCase(), port };
}

/** Parses `tcp://host:port` or `udp://host:port`; the host must be an IP literal. */
export function parseListenUrl(text: string, transport?: Transport): ListenAddress | string {
  const m = /^(tcp|udp):\/\/(.+)$/.exec(text.trim());
  const want = transport ? `${transport}://host:port` : 'tcp://host:port or udp://host:port';
  if (!m) return `expected ${want}`;
  if (transport && m[1] !== transport) return `expected ${want}`;
  const hp = parseHostPort(m[2]!, true);
  if (typeof hp === 'string') return `expected ${want}: ${hp}`;
  if (!net.isIP(hp.host)) return `listen host must be an IP address, got "${hp.host}"`;
  return { transport: m[1] as Transport, host: hp.host, port: hp.port };
}

export function formatListen(l: ListenAddress): string {
  return `${l.transport}://${formatHostPort(l.host, l.port)}`;
}

/**
 * Numeric key of an IPv4 text address (as Node reports it in rinfo) and a port, or -1 when the
 * text is not plain dotted IPv4. Hot path: no allocation, no regex.
 */
export function ipv4PortKey(address: string, port: number): number {
  let acc = 0;
  let part = 0;
  let dots = 0;
  let digits = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      acc = acc * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return (acc * 256 + part) * 65536 + port;
}
