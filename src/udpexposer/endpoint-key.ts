import { canonicalIp, ipv4PortKey } from '../core/address.js';

/**
 * Map key of a peer as a socket reports it: a number for plain IPv4 (no allocation), else the
 * canonical address and port as text, so `::ffff:1.2.3.4` and `1.2.3.4` are the same peer.
 * Undefined when the address is not an IP.
 */
export function peerKey(address: string, port: number): number | string | undefined {
  const k = ipv4PortKey(address, port);
  if (k >= 0) return k;
  const ip = canonicalIp(address);
  if (!ip) return undefined;
  return ip.family === 4 ? ipv4PortKey(ip.address, port) : `${ip.address}|${port}`;
}

/** Dotted text of an IPv4 address given as a uint32 (as a datapath reports sources). */
export function ipv4Text(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
