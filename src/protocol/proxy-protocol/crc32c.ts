/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as the PROXY v2 CRC32C TLV requires
 * (spec 2.2.3, RFC 4960 appendix B). node:zlib's crc32 is the IEEE polynomial and gives a different
 * value. Check value: crc32c("123456789") === 0xE3069283.
 */
const TABLE = buildTable();

function buildTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** Initial running state; feed it to `crc32cUpdate` and close with `crc32cFinish`. */
export const CRC32C_INIT = 0xffffffff;

/** Folds `data[start, end)` into a running state (not yet finished). */
export function crc32cUpdate(state: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = state;
  for (let i = start; i < end; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

export function crc32cFinish(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** CRC-32C of `data[start, end)`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array, start = 0, end = data.length): number {
  return crc32cFinish(crc32cUpdate(CRC32C_INIT, data, start, end));
}

const ZEROS = new Uint8Array(4);

/**
 * CRC-32C of `data[start, end)` computed as if the 4 bytes at `zeroAt` were zero, without copying:
 * the v2 header checksum covers the whole header with the checksum field itself zeroed.
 */
export function crc32cWithZeroedField(data: Uint8Array, start: number, end: number, zeroAt: number): number {
  let s = crc32cUpdate(CRC32C_INIT, data, start, zeroAt);
  s = crc32cUpdate(s, ZEROS, 0, 4);
  s = crc32cUpdate(s, data, zeroAt + 4, end);
  return crc32cFinish(s);
}
