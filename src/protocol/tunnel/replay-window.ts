import { DEFAULT_REPLAY_WINDOW } from './constants.js';
import { TunnelError } from './errors.js';

/**
 * Anti-replay sliding window over datagram sequence numbers (RFC 6479's ring of bitmap blocks, as
 * in IPsec and WireGuard). With window W and `top` the highest sequence accepted so far:
 *
 *   accept s  iff  s > top,  or  top - W < s <= top and s was not accepted before.
 *
 * `s <= top - W` is 'too-old' and a repeat is 'replayed'. Sequence numbers are integers in
 * 0..2^48-1 (exact as JS numbers). The ring holds W/32 + 1 blocks of 32 bits, so every position of
 * the window has its own bit, and moving `top` forward clears only the blocks it enters; cost
 * is O(1) per datagram apart from a jump that clears at most W/32 + 1 blocks.
 *
 * Check before decrypting and mark only after the AEAD tag verified (`check` then `accept`):
 * a forged datagram must never move the window.
 */
export type ReplayVerdict = 'ok' | 'replayed' | 'too-old';

const BLOCK_BITS = 32;

export class ReplayWindow {
  readonly size: number;
  readonly #ring: Uint32Array;
  readonly #blocks: number;
  /** Highest accepted sequence number, -1 before the first. */
  #top = -1;

  /** `size` in datagrams: a multiple of 32, at least 32. */
  constructor(size: number = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < BLOCK_BITS || size % BLOCK_BITS !== 0 || size > 1 << 20) {
      throw new TunnelError('bad-value', `replay window ${size} must be a multiple of 32 in 32-1048576`);
    }
    this.size = size;
    this.#blocks = size / BLOCK_BITS + 1;
    this.#ring = new Uint32Array(this.#blocks);
  }

  /** Highest sequence number accepted so far, or -1. */
  get top(): number {
    return this.#top;
  }

  check(seq: number): ReplayVerdict {
    if (seq > this.#top) return 'ok';
    if (this.#top - seq >= this.size) return 'too-old';
    const block = Math.floor(seq / BLOCK_BITS);
    const bit = seq - block * BLOCK_BITS;
    return (this.#ring[block % this.#blocks]! >>> bit) & 1 ? 'replayed' : 'ok';
  }

  /** Marks `seq` as seen. Call only after `check(seq)` returned 'ok' and the datagram authenticated. */
  accept(seq: number): void {
    const block = Math.floor(seq / BLOCK_BITS);
    if (seq > this.#top) {
      const topBlock = this.#top < 0 ? -1 : Math.floor(this.#top / BLOCK_BITS);
      const advance = Math.min(block - topBlock, this.#blocks);
      for (let i = 0; i < advance; i++) this.#ring[(block - i) % this.#blocks] = 0;
      this.#top = seq;
    }
    const bit = seq - block * BLOCK_BITS;
    this.#ring[block % this.#blocks] |= 1 << bit;
  }

  /** `check` and, when 'ok', `accept`, for callers that have already authenticated the datagram. */
  update(seq: number): ReplayVerdict {
    const v = this.check(seq);
    if (v === 'ok') this.accept(seq);
    return v;
  }
}
