import { encodeProxyV1 } from './v1-encoder.js';
import { encodeProxyV2 } from './v2-encoder.js';
import type { ProxyHeader } from './types.js';

/**
 * Re-encodes a decoded header in its own version. v2 is byte-identical to a canonical input
 * (zero-filled LOCAL block, recomputed CRC32C); v1 writes canonical text, so a TCP6 line with
 * IPv4-mapped addresses comes back as TCP4, and UNKNOWN as the short form.
 */
export function encodeProxyHeader(header: ProxyHeader): Buffer {
  return header.version === 1 ? encodeProxyV1(header.addresses) : encodeProxyV2(header);
}
