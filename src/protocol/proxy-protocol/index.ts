/**
 * PROXY protocol v1 and v2 codec (HAProxy doc/proxy-protocol.txt, revision 2026/04/27).
 * Pure functions over Buffer; see docs/proxy-protocol.md for what is accepted and why.
 */
export { decodeProxyHeader, decodeProxyDatagram } from './decoder.js';
export { encodeProxyV1, proxyV1Line } from './v1-encoder.js';
export { encodeProxyV2, encodeProxyV2Into, proxyV2Length, type ProxyV2EncodeInput } from './v2-encoder.js';
export { encodeProxyHeader } from './header-encoder.js';
export { findTlv, tlvText } from './tlv.js';
export { crc32c } from './crc32c.js';
export { ProxyHeaderError, isProxyHeaderError, type ProxyHeaderErrorReason } from './errors.js';
export type { IpPort } from './endpoint-input.js';
export * from './types.js';
