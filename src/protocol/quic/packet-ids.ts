/**
 * The connection IDs of a QUIC long-header packet, read in the version-independent way (RFC 8999
 * section 5.1: byte 0 with the high bit set, a 32-bit version, then length-prefixed Destination and
 * Source Connection IDs), without opening anything. Pure over Buffer; never throws. What follows the
 * IDs (token, length, packet number) is version-specific and not read here.
 */
import { quicVersionParams } from './initial-keys.js';

/** RFC 8999 allows IDs of up to 255 bytes in unknown versions; v1 and v2 use at most 20. */
const MAX_INVARIANT_CID = 255;

export interface LongHeaderIds {
  readonly version: number;
  /** The two long-header type bits (byte 0, bits 4-5); their meaning depends on the version. */
  readonly type: number;
  /** Views into the datagram (no copy). */
  readonly dcid: Buffer;
  readonly scid: Buffer;
}

/** The IDs of the long-header packet at the start of `dgram`; undefined for a short header or bytes that do not add up. */
export function longHeaderIds(dgram: Buffer): LongHeaderIds | undefined {
  if (dgram.length < 7 || (dgram[0]! & 0x80) === 0) return undefined;
  const version = dgram.readUInt32BE(1);
  const dcidLen = dgram[5]!;
  if (dcidLen > MAX_INVARIANT_CID || 6 + dcidLen >= dgram.length) return undefined;
  const scidAt = 7 + dcidLen;
  const scidLen = dgram[6 + dcidLen]!;
  if (scidAt + scidLen > dgram.length) return undefined;
  return { version, type: (dgram[0]! >> 4) & 0x03, dcid: dgram.subarray(6, 6 + dcidLen), scid: dgram.subarray(scidAt, scidAt + scidLen) };
}

/** A Version Negotiation packet (version 0, RFC 8999 section 6): sent by servers only. */
export function isVersionNegotiation(ids: LongHeaderIds): boolean {
  return ids.version === 0;
}

/** A v1 or v2 Initial packet (an unknown version's type bits mean nothing to us). */
export function isInitialPacket(ids: LongHeaderIds): boolean {
  return quicVersionParams(ids.version)?.initialType === ids.type;
}

/** A v1 or v2 Retry packet (sent by servers only; its Source Connection ID is the DCID of the client's next Initial). */
export function isRetryPacket(ids: LongHeaderIds): boolean {
  const p = quicVersionParams(ids.version);
  return p !== undefined && ids.type === (p.initialType === 0 ? 0b11 : 0b00);
}
