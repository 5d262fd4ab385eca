import { canonicalInput, type IpPort } from './endpoint-input.js';

const UNKNOWN_LINE = 'PROXY UNKNOWN\r\n';

/**
 * The v1 line for a TCP connection from `source` to `destination` (spec 2.1), addresses in
 * canonical text. v1 has no UDP form.
 *
 * "PROXY UNKNOWN\r\n" when `addresses` is undefined (the real client is not known) and when the two
 * families differ (an IPv4 client on an IPv6 listener, or the reverse): a TCP4/TCP6 line must carry
 * two addresses of its own family, and nginx does the same (threats-and-tests.md PP-2). IPv4-mapped
 * IPv6 counts as IPv4, so a dual-stack listener still sends TCP4 for an IPv4 client.
 * Throws SluiceError SLUICE_ERR_ADDRESS_INVALID for a non-IP address or a port outside 0-65535.
 */
export function encodeProxyV1(addresses?: { readonly source: IpPort; readonly destination: IpPort }): Buffer {
  return Buffer.from(proxyV1Line(addresses), 'latin1');
}

/** The same line as a string, for callers that write text. */
export function proxyV1Line(addresses?: { readonly source: IpPort; readonly destination: IpPort }): string {
  if (addresses === undefined) return UNKNOWN_LINE;
  const s = canonicalInput(addresses.source, 'source');
  const d = canonicalInput(addresses.destination, 'destination');
  if (s.family !== d.family) return UNKNOWN_LINE;
  return `PROXY TCP${s.family} ${s.address} ${d.address} ${s.port} ${d.port}\r\n`;
}
