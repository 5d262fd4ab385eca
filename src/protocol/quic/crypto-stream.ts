/**
 * The Initial CRYPTO stream reassembled by offset (RFC 9000 section 19.6): frames may arrive in
 * any order, overlap, repeat, and span several packets and datagrams. Bounded: nothing beyond
 * `limit` bytes of stream and at most `maxPieces` separate pieces are kept.
 */
export type CryptoStreamError = 'too-large' | 'too-fragmented';

export class CryptoStream {
  #buf: Buffer = Buffer.alloc(0);
  /** Received ranges [start, end), sorted, disjoint and not touching. */
  #ranges: Array<[number, number]> = [];

  constructor(readonly limit: number, readonly maxPieces: number) {}

  /** Stream bytes received from offset 0 without a gap. */
  get contiguous(): number {
    const r = this.#ranges[0];
    return r !== undefined && r[0] === 0 ? r[1] : 0;
  }

  /** The first `n` contiguous bytes (n <= contiguous), as a view. */
  prefix(n: number): Buffer {
    return this.#buf.subarray(0, n);
  }

  add(offset: number, data: Buffer): CryptoStreamError | undefined {
    if (data.length === 0) return undefined;
    const end = offset + data.length;
    if (end > this.limit) return 'too-large';
    if (end > this.#buf.length) {
      const grown = Buffer.alloc(Math.min(this.limit, Math.max(end, this.#buf.length * 2)));
      this.#buf.copy(grown);
      this.#buf = grown;
    }
    data.copy(this.#buf, offset);
    return this.#insert(offset, end);
  }

  #insert(start: number, end: number): CryptoStreamError | undefined {
    const out: Array<[number, number]> = [];
    let placed = false;
    for (const r of this.#ranges) {
      if (r[1] < start) out.push(r);
      else if (r[0] > end) {
        if (!placed) out.push([start, end]);
        placed = true;
        out.push(r);
      } else {
        start = Math.min(start, r[0]);
        end = Math.max(end, r[1]);
      }
    }
    if (!placed) out.push([start, end]);
    if (out.length > this.maxPieces) return 'too-fragmented';
    this.#ranges = out;
    return undefined;
  }
}
