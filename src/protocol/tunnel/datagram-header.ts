import { DATAGRAM_OVERHEAD_BYTES, DatagramType, FLAG_ORIGIN, FLAG_ORIGIN_PORT } from './constants.js';

/**
 * The 16-byte header of a tunnel UDP datagram (docs/tunnel-protocol.md, "Datagrams"):
 *
 *   0  u8   type       0x0c data | 0x0d keepalive | 0x0e keepalive-ack  (first byte in 4-15)
 *   1  u8   flags      bit 0: plaintext starts with an origin block (data only); bit 1 (only
 *                      with bit 0): the block ends with the public port (a range service); other bits 0
 *   2  u32  key id     chosen by the receiver (HELLO / AUTH_OK): selects the session and key
 *   6  u32  tag        connectee tag (data), 0 for keepalives
 *   10 u48  sequence   per key and direction, from 0; part of the AEAD nonce
 *   16 ...  ciphertext, then the 16-byte Poly1305 tag
 *
 * The header is the AEAD's associated data: sent in clear, but any change to it fails the tag.
 */

export type TunnelDatagramKind = 'data' | 'keepalive' | 'keepalive-ack';

export interface DatagramHeader {
  readonly kind: TunnelDatagramKind;
  readonly flags: number;
  readonly keyId: number;
  readonly tag: number;
  readonly sequence: number;
}

const KIND_BY_BYTE: (TunnelDatagramKind | undefined)[] = [];
KIND_BY_BYTE[DatagramType.data] = 'data';
KIND_BY_BYTE[DatagramType.keepalive] = 'keepalive';
KIND_BY_BYTE[DatagramType.keepaliveAck] = 'keepalive-ack';

export const DATAGRAM_TYPE_BYTE: Readonly<Record<TunnelDatagramKind, number>> = {
  data: DatagramType.data,
  keepalive: DatagramType.keepalive,
  'keepalive-ack': DatagramType.keepaliveAck,
};

/** True when the first byte is one of the tunnel's datagram types (a cheap demux test, nothing more). */
export function isTunnelDatagram(buf: Uint8Array): boolean {
  return buf.length > 0 && KIND_BY_BYTE[buf[0]!] !== undefined;
}

/**
 * Reads the header WITHOUT verifying anything: use it only to find the session by `keyId` before
 * calling that session's `DatagramOpener.open`. Undefined when the bytes cannot be a tunnel
 * datagram (unknown type, shorter than header + tag, undefined flag bits, or tag/flag rules broken).
 * Never throws.
 */
export function readUnverifiedHeader(buf: Buffer): DatagramHeader | undefined {
  if (buf.length < DATAGRAM_OVERHEAD_BYTES) return undefined;
  const kind = KIND_BY_BYTE[buf[0]!];
  if (kind === undefined) return undefined;
  const flags = buf[1]!;
  const tag = buf.readUInt32BE(6);
  if (kind === 'data') {
    if ((flags & ~(FLAG_ORIGIN | FLAG_ORIGIN_PORT)) !== 0 || flags === FLAG_ORIGIN_PORT || tag === 0) return undefined;
  } else if (flags !== 0 || tag !== 0) {
    return undefined;
  }
  return { kind, flags, keyId: buf.readUInt32BE(2), tag, sequence: buf.readUIntBE(10, 6) };
}

/** Writes a header into `out` at 0 (no allocation); the caller has validated every field. */
export function writeDatagramHeader(out: Buffer, typeByte: number, flags: number, keyId: number, tag: number, sequence: number): void {
  out[0] = typeByte;
  out[1] = flags;
  out.writeUInt32BE(keyId, 2);
  out.writeUInt32BE(tag, 6);
  out.writeUIntBE(sequence, 10, 6);
}

