/**
 * QUIC variable-length integers (RFC 9000 section 16): 1, 2, 4 or 8 bytes, the length in the top
 * two bits of the first byte. Values above 2^53 lose precision; every caller compares them with
 * buffer lengths, which they exceed either way.
 */

/** A read position over one buffer; `ok` turns false at the first read past the end and stays so. */
export class QuicCursor {
  at: number;
  ok = true;

  constructor(readonly buf: Buffer, at = 0, readonly end = buf.length) {
    this.at = at;
  }

  get left(): number {
    return this.end - this.at;
  }

  u8(): number {
    if (this.at >= this.end) return this.#short();
    return this.buf[this.at++]!;
  }

  varint(): number {
    if (this.at >= this.end) return this.#short();
    const first = this.buf[this.at]!;
    const len = 1 << (first >> 6);
    if (this.at + len > this.end) return this.#short();
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + this.buf[this.at + i]!;
    this.at += len;
    return v;
  }

  /** `n` bytes as a view (not a copy), or an empty view past the end. */
  bytes(n: number): Buffer {
    if (n > this.left) {
      this.#short();
      return this.buf.subarray(0, 0);
    }
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  skip(n: number): void {
    if (n > this.left) this.#short();
    else this.at += n;
  }

  #short(): number {
    this.ok = false;
    this.at = this.end;
    return 0;
  }
}

/** Encodes `v` (below 2^62) in the shortest form. */
export function encodeVarint(v: number): Buffer {
  if (v < 0x40) return Buffer.of(v);
  if (v < 0x4000) return Buffer.of(0x40 | (v >> 8), v & 0xff);
  if (v < 0x40000000) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v, 0);
    b[0]! |= 0x80;
    return b;
  }
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(v / 2 ** 32), 0);
  b.writeUInt32BE(v >>> 0, 4);
  b[0]! |= 0xc0;
  return b;
}
