import type { Endpoint } from '../core/address.js';
import { formatIpValue, parseIpValue } from './acl/ip-value.js';

/**
 * How many leading bits of a client address make one "source" for per-source caps and rates
 * (`sourcePrefix`, docs/configuration.md). IPv6 defaults to /64 because that is what one customer
 * gets (RFC 6177): keyed on the full /128, one subscriber walks around every per-source limit by
 * changing its interface identifier.
 */
export interface SourcePrefix {
  readonly ipv4: number;
  readonly ipv6: number;
}

export const DEFAULT_SOURCE_PREFIX: SourcePrefix = Object.freeze({ ipv4: 32, ipv6: 64 });

/**
 * The per-source key of a canonical client address: the address itself when the prefix is the
 * whole address (IPv4 /32, IPv6 /128), else the network in canonical CIDR text
 * (`2001:db8:1:2::/64`), which is also what a rejection names. Computed once per new session or
 * connection and kept with it, so release and refund use the key that admission used.
 */
export function sourceKey(client: Pick<Endpoint, 'address' | 'family'>, prefix: SourcePrefix = DEFAULT_SOURCE_PREFIX): string {
  const bits = client.family === 4 ? prefix.ipv4 : prefix.ipv6;
  if (bits >= (client.family === 4 ? 32 : 128)) return client.address;
  const ip = parseIpValue(client.address);
  if (!ip) return client.address;
  const words = ip.words.map((w, i) => {
    const keep = Math.min(32, Math.max(0, bits - i * 32));
    return keep === 32 ? w : keep === 0 ? 0 : (w & (~0 << (32 - keep))) >>> 0;
  });
  return `${formatIpValue({ family: ip.family, words })}/${bits}`;
}
