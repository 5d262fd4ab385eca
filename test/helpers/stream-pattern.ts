/**
 * Bytes `from` .. `from + len` of a position-dependent stream: byte i is (i * 7 + (i >>> 13)) & 255,
 * so a slip, a loss or a repeat anywhere changes what follows. For relay tests that check a long
 * stream in order without keeping a copy of it.
 */
export function pattern(from: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let k = 0; k < len; k++) {
    const i = from + k;
    b[k] = (i * 7 + (i >>> 13)) & 255;
  }
  return b;
}
