import net from 'node:net';
import { formatV6, ipv6Bytes } from '../../core/address.js';

/** A destination as the native send records carry it: family 4 with `a0` the uint32, or 6 with 16 raw bytes as four int32. */
export interface NativeAddress {
  readonly family: 4 | 6;
  readonly a0: number;
  readonly a1: number;
  readonly a2: number;
  readonly a3: number;
}

/** Entries kept before the cache starts over: far above the clients of one listener that are live at once. */
const MAX_ENTRIES = 65_536;

/**
 * Turns the address strings of the session table into native destinations, once per distinct
 * string: replies go to the same few strings over and over, so the per-datagram cost is one Map
 * lookup on a string whose hash V8 has already computed.
 */
export class AddressBook {
  readonly #cache = new Map<string, NativeAddress | null>();

  /** The destination for `address`, or null when it is not an IP literal. */
  lookup(address: string): NativeAddress | null {
    let a = this.#cache.get(address);
    if (a === undefined) {
      a = parse(address);
      if (this.#cache.size >= MAX_ENTRIES) this.#cache.clear();
      this.#cache.set(address, a);
    }
    return a;
  }
}

function parse(address: string): NativeAddress | null {
  if (net.isIPv4(address)) return { family: 4, a0: v4Number(address) | 0, a1: 0, a2: 0, a3: 0 };
  const zone = address.indexOf('%');
  const b = ipv6Bytes(zone >= 0 ? address.slice(0, zone) : address);
  if (!b) return null;
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    // An IPv4-mapped address: sent as IPv4, mapped back by the native side on an IPv6 socket.
    return { family: 4, a0: ((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!) | 0, a1: 0, a2: 0, a3: 0 };
  }
  const w = new Int32Array(b.buffer, b.byteOffset, 4);
  return { family: 6, a0: w[0]!, a1: w[1]!, a2: w[2]!, a3: w[3]! };
}

function v4Number(address: string): number {
  const p = address.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * Formats the source addresses of received datagrams. The last IPv6 source is remembered, so a
 * busy IPv6 client costs one comparison per datagram instead of a new string.
 */
export class SourceFormatter {
  readonly #last = new Int32Array(4);
  #lastText = '';

  v6(words: Int32Array, at: number): string {
    const l = this.#last;
    if (this.#lastText !== '' && l[0] === words[at] && l[1] === words[at + 1] && l[2] === words[at + 2] && l[3] === words[at + 3]) return this.#lastText;
    l.set(words.subarray(at, at + 4));
    this.#lastText = formatV6(new Uint8Array(l.buffer.slice(0)));
    return this.#lastText;
  }
}
