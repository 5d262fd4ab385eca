import { SluiceError } from '../../core/errors.js';

/**
 * Why a PROXY header was refused. A closed set, so a listener can keep one counter per reason
 * (threats-and-tests.md PP-1). Branch on it, never on the message.
 */
export type ProxyHeaderErrorReason =
  /** The first bytes are neither `PROXY ` (v1) nor the v2 signature: no header was sent. */
  | 'not-proxy'
  /** A header of a version this receiver is not configured for (spec 2: "must not guess"). */
  | 'version-not-allowed'
  /** The input ended (stream closed, or a datagram) before the header was complete. */
  | 'truncated'
  /** v1: no CRLF within 107 bytes (or within the longest line its protocol allows). */
  | 'too-long'
  /** v2: 16 + len exceeds the configured maximum header size. */
  | 'too-large'
  /** v1: anything that does not match the grammar exactly (spaces, tokens, bare CR or LF). */
  | 'bad-syntax'
  /** v1: an address that is not a literal of the announced family. */
  | 'bad-address'
  /** v1: a port that is not plain decimal 0-65535 without leading zeros. */
  | 'bad-port'
  /** v2: version nibble is not 2. */
  | 'bad-version'
  /** v2: command nibble is neither LOCAL (0) nor PROXY (1). */
  | 'bad-command'
  /** v2: the family/transport byte is not one of 0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32. */
  | 'bad-family'
  /** v2: len is shorter than the address block of the announced family. */
  | 'bad-length'
  /** v2 with TLV validation on: the TLV area does not parse exactly, or a known TLV breaks its rule. */
  | 'tlv-malformed'
  /** v2: a CRC32C TLV is present and does not match (spec 2.2.3: MUST reject). */
  | 'crc-mismatch';

/** Invalid input to a PROXY header decoder. Always code `SLUICE_ERR_PROXY_HEADER_INVALID`. */
export class ProxyHeaderError extends SluiceError {
  override name = 'ProxyHeaderError';
  constructor(
    readonly reason: ProxyHeaderErrorReason,
    message: string,
    /** Byte offset in the input where the problem was seen. */
    readonly offset: number,
  ) {
    super('SLUICE_ERR_PROXY_HEADER_INVALID', `PROXY header ${reason} at byte ${offset}: ${message}`);
  }
}

export function isProxyHeaderError(err: unknown): err is ProxyHeaderError {
  return err instanceof ProxyHeaderError;
}
