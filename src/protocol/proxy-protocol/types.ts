import type { Endpoint } from '../../core/address.js';

/**
 * Values of the PROXY protocol (HAProxy doc/proxy-protocol.txt, revision 2026/04/27).
 * Addresses in decoded headers have passed the project's canonicalisation (core/address.ts):
 * IPv6 in RFC 5952 text, IPv4-mapped IPv6 as plain IPv4 with `family: 4`. The wire family is kept
 * separately (`protocol` in v1, `family` in v2), so "mapped on the wire" is still visible.
 */

/** Source and destination of the proxied connection, as the sender saw them. */
export interface ProxyAddresses {
  readonly source: Endpoint;
  readonly destination: Endpoint;
}

export interface UnixAddresses {
  /** Path up to the first NUL of the 108-byte field, decoded as UTF-8. */
  readonly source: string;
  readonly destination: string;
}

export interface ProxyHeaderV1 {
  readonly version: 1;
  /** The protocol token on the wire. */
  readonly protocol: 'TCP4' | 'TCP6' | 'UNKNOWN';
  /** Set for TCP4 and TCP6. Undefined for UNKNOWN: the receiver uses the connection's own endpoints. */
  readonly addresses: ProxyAddresses | undefined;
}

export type V2Command = 'LOCAL' | 'PROXY';
export type V2Family = 'AF_UNSPEC' | 'AF_INET' | 'AF_INET6' | 'AF_UNIX';
export type V2Transport = 'UNSPEC' | 'STREAM' | 'DGRAM';

export interface ProxyHeaderV2 {
  readonly version: 2;
  readonly command: V2Command;
  readonly family: V2Family;
  readonly transport: V2Transport;
  /**
   * Set only for PROXY with AF_INET or AF_INET6. Undefined means "use the connection's own
   * endpoints": LOCAL (the address block is discarded, spec 2.2), PROXY with AF_UNSPEC, and AF_UNIX.
   */
  readonly addresses: ProxyAddresses | undefined;
  /** Set only for PROXY with AF_UNIX. */
  readonly unix: UnixAddresses | undefined;
  /** TLVs in wire order, the CRC32C and NOOP ones included. */
  readonly tlvs: readonly ProxyTlv[];
}

export type ProxyHeader = ProxyHeaderV1 | ProxyHeaderV2;

/**
 * One TLV. `value` is a view into the decoder's input (no copy): copy it if you keep it longer
 * than that buffer.
 */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
  /** Parsed form of a PP2_TYPE_SSL value, when it is well-formed. */
  readonly ssl?: SslTlv;
}

/** PP2_TYPE_SSL value: `client` bit field (PP2_CLIENT_*), `verify` (0 = verified), sub-TLVs. */
export interface SslTlv {
  readonly client: number;
  readonly verify: number;
  readonly subTlvs: readonly ProxyTlv[];
}

/** A TLV to encode. Any Uint8Array works as the value. */
export interface TlvInput {
  readonly type: number;
  readonly value: Uint8Array;
}

/** "Need more bytes" is a result, not an error (STYLE.md 12). */
export type ProxyDecodeResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'ok'; readonly header: ProxyHeader; readonly length: number };

export interface ProxyDecodeOptions {
  /** The version(s) this receiver is configured for; others are refused. Default 'any'. */
  readonly version?: 1 | 2 | 'any';
  /**
   * Default true: the TLV area must parse exactly (HAProxy's rule), a CRC32C TLV must be 4 bytes,
   * UNIQUE_ID at most 128 bytes, AUTHORITY at most 255, SSL at least 5 bytes with exact sub-TLVs.
   * False: TLVs are parsed up to the first malformed one and the rest is ignored.
   * Either way a well-formed CRC32C TLV is verified (the spec says MUST).
   */
  readonly validateTlvs?: boolean;
  /** Largest v2 header accepted, the 16 fixed bytes included. Default 4096. v1 is always 107. */
  readonly maxV2HeaderBytes?: number;
  /**
   * The input is all there will be (a UDP datagram, or a TCP stream that has ended): an incomplete
   * header is an error ('truncated') instead of 'need-more'. Default false.
   */
  readonly final?: boolean;
}

/** TLV types of spec 2.2 (0xE0-0xEF are custom: AWS uses 0xEA, Azure 0xEE). */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

/** Sub-TLV types inside PP2_TYPE_SSL. */
export const PP2_SUBTYPE_SSL = {
  VERSION: 0x21,
  CN: 0x22,
  CIPHER: 0x23,
  SIG_ALG: 0x24,
  KEY_ALG: 0x25,
  GROUP: 0x26,
  SIG_SCHEME: 0x27,
  CLIENT_CERT: 0x28,
} as const;

/** Bits of `SslTlv.client`. */
export const PP2_CLIENT = { SSL: 0x01, CERT_CONN: 0x02, CERT_SESS: 0x04 } as const;

/** v1: the longest line, CRLF included (spec 2.1). */
export const V1_MAX_HEADER_BYTES = 107;
/** v2: the fixed part (signature, ver_cmd, fam, len). */
export const V2_FIXED_BYTES = 16;
/** v2: default cap on 16 + len; the spec bounds it only by the u16 (go-proxyproto caps len at 4096). */
export const V2_DEFAULT_MAX_HEADER_BYTES = 4096;
/** Spec 2.2 limits that HAProxy enforces when it parses TLVs. */
export const UNIQUE_ID_MAX_BYTES = 128;
export const AUTHORITY_MAX_BYTES = 255;

/** The v2 signature: "\r\n\r\n\0\r\nQUIT\n". */
export const V2_SIGNATURE: Readonly<Uint8Array> = Uint8Array.of(
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
);
