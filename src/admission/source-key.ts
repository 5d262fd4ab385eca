import type { Endpoint } from '../core/address.js';
import { formatIpValue, parseIpValue } from '../core/ip-value.js';
import { DEFAULT_SOURCE_PREFIX, type SourcePrefix } from '../core/source-prefix.js';

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
