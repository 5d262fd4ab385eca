import zlib from 'node:zlib';
import { FINGERPRINT_XOR } from './constants.js';

/**
 * CRC-32 (ISO-HDLC, the zlib one) as FINGERPRINT needs it (RFC 8489 §14.7). node:zlib has had
 * `crc32` since Node 20.15; the table version keeps Node 20.3-20.14 working.
 */
type Crc32 = (data: Uint8Array, initial?: number) => number;

let table: Uint32Array | undefined;

function tableCrc32(data: Uint8Array, initial = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = ~initial >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

const nativeCrc32 = (zlib as unknown as { crc32?: Crc32 }).crc32;

/** Exposed for tests, which compare it with zlib where zlib has it. */
export const crc32: Crc32 = nativeCrc32 ?? tableCrc32;
export const crc32Table: Crc32 = tableCrc32;

/**
 * The FINGERPRINT value over `data`, which must be the message up to (not including) the
 * FINGERPRINT attribute, with the header length already counting FINGERPRINT.
 */
export function fingerprintOf(data: Uint8Array): number {
  return (crc32(data) ^ FINGERPRINT_XOR) >>> 0;
}
