import { cidrRange, type Cidr } from './cidr.js';
import type { IpValue } from './ip-value.js';

/**
 * A compiled list of networks of one family, answering "which rule contains this address" with a
 * binary search and no text handling.
 *
 * Layout: networks sorted by first address (wider first on ties), duplicates dropped, each with
 * the index of the narrowest listed network that contains it. CIDR blocks are either nested or
 * disjoint, so the last network starting at or below the address either contains it or one of
 * its ancestors does; the walk up is at most `width * 32` steps and usually none. The result is
 * the most specific matching rule, which is what a denial detail should name.
 */
class FamilyTable {
  readonly #width: number;
  readonly #first: Uint32Array;
  readonly #last: Uint32Array;
  readonly #parent: Int32Array;
  readonly #rules: readonly Cidr[];

  constructor(width: number, cidrs: readonly Cidr[]) {
    this.#width = width;
    const sorted = [...cidrs].sort((a, b) => compare(a.words, 0, b.words, 0, width) || a.prefix - b.prefix);
    const rules: Cidr[] = [];
    for (const c of sorted) {
      const prev = rules[rules.length - 1];
      if (prev && prev.prefix === c.prefix && compare(prev.words, 0, c.words, 0, width) === 0) continue;
      rules.push(c);
    }
    this.#rules = rules;
    this.#first = new Uint32Array(rules.length * width);
    this.#last = new Uint32Array(rules.length * width);
    this.#parent = new Int32Array(rules.length);
    const stack: number[] = [];
    rules.forEach((c, i) => {
      const { first, last } = cidrRange(c);
      this.#first.set(first, i * width);
      this.#last.set(last, i * width);
      while (stack.length > 0 && compare(this.#last, stack[stack.length - 1]! * width, last, 0, width) < 0) stack.pop();
      this.#parent[i] = stack.length > 0 ? stack[stack.length - 1]! : -1;
      stack.push(i);
    });
  }

  get size(): number {
    return this.#rules.length;
  }

  /** The most specific rule containing the address `words` (`width` words), or undefined. */
  match(words: readonly number[]): Cidr | undefined {
    const w = this.#width;
    let lo = 0;
    let hi = this.#rules.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(this.#first, mid * w, words, 0, w) <= 0) {
        at = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    while (at >= 0) {
      if (compare(this.#last, at * w, words, 0, w) >= 0) return this.#rules[at];
      at = this.#parent[at]!;
    }
    return undefined;
  }
}

function compare(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number, width: number): number {
  for (let k = 0; k < width; k++) {
    const x = a[ai + k]!;
    const y = b[bi + k]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The `::ffff:0:0/96` block, whose addresses are IPv4 clients after canonicalisation. */
const MAPPED_BLOCK = [0, 0, 0xffff, 0];

/**
 * A set of IPv4 and IPv6 networks. `match` takes an IpValue and returns the most specific rule
 * containing it. An IPv6 rule wider than /96 that contains `::ffff:0:0/96` (such as `::/0`) also
 * matches every IPv4 address, because an IPv4 client and its mapped form are one address; this
 * is also what `net.BlockList` does. Immutable once built; safe to share between routes.
 */
export class CidrSet {
  readonly #v4: FamilyTable;
  readonly #v6: FamilyTable;
  /** The IPv6 rule covering all of IPv4 through the mapped block, if any (widest wins). */
  readonly #allV4: Cidr | undefined;

  constructor(cidrs: readonly Cidr[]) {
    this.#v4 = new FamilyTable(1, cidrs.filter((c) => c.family === 4));
    this.#v6 = new FamilyTable(4, cidrs.filter((c) => c.family === 6));
    this.#allV4 = this.#v6.match(MAPPED_BLOCK);
  }

  /** Number of distinct networks. */
  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  match(ip: IpValue): Cidr | undefined {
    return ip.family === 4 ? this.matchIpv4(ip.words[0]!) : this.#v6.match(ip.words);
  }

  /** `match` for a uint32 IPv4 value (used for IPv4 addresses embedded in IPv6 ones). */
  matchIpv4(v4: number): Cidr | undefined {
    return this.#v4.match([v4]) ?? this.#allV4;
  }
}
