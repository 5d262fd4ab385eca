import { SluiceError } from '../core/errors.js';

/**
 * TURN ChannelData framing (RFC 8656 §12.4): `channel(u16) ‖ length(u16) ‖ data`, where length
 * counts the data only. Pure functions over Buffer. Over UDP the padding to 4 bytes is optional
 * (coturn sends none and strips what it gets); over TCP it is required, which is what `pad` is for.
 */

/** Channel numbers a client may bind (RFC 8656 §12: 0x4000-0x4FFF; RFC 5766's 0x5000-0x7FFF are gone). */
export const MIN_CHANNEL = 0x4000;
export const MAX_CHANNEL = 0x4fff;
export const CHANNEL_DATA_HEADER_BYTES = 4;

export interface ChannelData {
  readonly channel: number;
  /** A view into the input. */
  readonly data: Buffer;
}

export function isValidChannel(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_CHANNEL && n <= MAX_CHANNEL;
}

/** Frames `data` for `channel`. Throws SLUICE_ERR_TURN for a number outside 0x4000-0x4FFF or data over 65535 bytes. */
export function encodeChannelData(channel: number, data: Uint8Array, pad = false): Buffer {
  if (!isValidChannel(channel)) throw new SluiceError('SLUICE_ERR_TURN', `channel number 0x${channel.toString(16)} is outside 0x4000-0x4FFF`);
  if (data.length > 0xffff) throw new SluiceError('SLUICE_ERR_TURN', `ChannelData of ${data.length} bytes is too long`);
  const padded = pad ? (data.length + 3) & ~3 : data.length;
  const out = Buffer.alloc(CHANNEL_DATA_HEADER_BYTES + padded);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  out.set(data, CHANNEL_DATA_HEADER_BYTES);
  return out;
}

/**
 * Reads one ChannelData datagram. Returns undefined when the first byte is outside 0x40-0x4F
 * (not ChannelData, RFC 7983), when the length field runs past the datagram, or when more than
 * three padding bytes follow the data: RFC 8656 §12.5 says such datagrams are discarded silently.
 */
export function decodeChannelData(buf: Buffer): ChannelData | undefined {
  if (buf.length < CHANNEL_DATA_HEADER_BYTES) return undefined;
  const channel = buf.readUInt16BE(0);
  if (!isValidChannel(channel)) return undefined;
  const length = buf.readUInt16BE(2);
  const end = CHANNEL_DATA_HEADER_BYTES + length;
  if (end > buf.length || buf.length - end > 3) return undefined;
  return { channel, data: buf.subarray(CHANNEL_DATA_HEADER_BYTES, end) };
}
