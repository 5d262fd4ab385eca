import type { Family } from './address.js';
import { formatIpValue, parseIpValue, type IpValue } from './ip-value.js';

/**
 * One network from the config, in numbers: `words` is the first address (host bits zero), in the
 * IpValue layout (one word for IPv4, four for IPv6). `text` is the canonical spelling, used in
 * denial details and in errors.
 */
export interface Cidr {
  readonly family: Family;
  readonly words: readonly number[];
  readonly prefix: number;
  readonly text: string;
}

const PREFIX = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Parses `203.0.113.0/24`, `2001:db8::/32`, or a bare address (= /32 or /128). Returns the Cidr
 * or a message for people (the config layer adds the key path and line).
 *
 * Strict on purpose, because a mistyped rule silently widens or narrows who gets in:
 * - IPv4 only in dotted decimal without leading zeros (no `10/8`, `127.1`, `0x7f.0.0.1`).
 * - No zones, brackets or spaces inside; the prefix length is decimal without leading zeros.
 * - Host bits must be zero: `203.0.113.7/24` is refused with a hint naming both readings
 *   (`203.0.113.0/24` or `203.0.113.7/32`), since either may have been meant.
 * - IPv4-mapped IPv6 networks inside `::ffff:0:0/96` become the IPv4 network they map
 *   (`::ffff:10.0.0.0/104` is `10.0.0.0/8`), the same equivalence `canonicalIp` applies to clients.
 */
export function parseCidr(input: string): Cidr | string {
  const text = input.trim();
  if (text === '') return 'expected an address or network such as 203.0.113.0/24 or 2001:db8::/32, got an empty string';
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? undefined : text.slice(slash + 1);
  const isV6Text = addrText.includes(':');
  const ip = parseIpValue(addrText);
  if (!ip) {
    if (addrText.includes('%')) return `"${text}": zone indexes (%...) are not allowed in rules`;
    if (addrText.startsWith('[')) return `"${text}": write IPv6 networks without brackets, e.g. 2001:db8::/32`;
    return isV6Text
      ? `"${text}" is not an IPv6 address or network`
      : `"${text}" is not an IPv4 address or network (dotted decimal a.b.c.d[/n], no leading zeros)`;
  }
  const max = isV6Text ? 128 : 32;
  let prefix = max;
  if (lenText !== undefined) {
    if (!PREFIX.test(lenText) || Number(lenText) > max) {
      return `"${text}": prefix length must be a whole number from 0 to ${max}`;
    }
    prefix = Number(lenText);
  }
  let family: Family = isV6Text ? 6 : 4;
  let words = isV6Text && ip.family === 4 ? mappedWords(ip.words[0]!) : ip.words;
  if (isV6Text && ip.family === 4 && prefix >= 96) {
    // Inside ::ffff:0:0/96: the rule is about IPv4 clients; write it as IPv4.
    family = 4;
    prefix -= 96;
    words = ip.words;
  }
  const network = maskWords(words, prefix);
  if (!sameWords(network, words)) {
    const net = formatIpValue({ family, words: network });
    const host = family === 4 ? 32 : 128;
    return `"${text}" has host bits set: write ${net}/${prefix} for the network, or ${formatIpValue({ family, words })}/${host} for one address`;
  }
  return { family, words: network, prefix, text: `${formatIpValue({ family, words: network })}/${prefix}` };
}

/** True when `ip` is inside `cidr` (same family only). Plain bit comparison, for tests and one-offs. */
export function cidrContains(cidr: Cidr, ip: IpValue): boolean {
  if (cidr.family !== ip.family) return false;
  return sameWords(maskWords(ip.words, cidr.prefix), cidr.words);
}

/** First and last address of `cidr`, in its own word layout. */
export function cidrRange(cidr: Cidr): { first: readonly number[]; last: readonly number[] } {
  const last = cidr.words.map((w, i) => {
    const bits = Math.min(32, Math.max(0, cidr.prefix - i * 32));
    return (w | hostMask(bits)) >>> 0;
  });
  return { first: cidr.words, last };
}

/** The four IPv6 words of the IPv4-mapped address of uint32 `v4`. */
export function mappedWords(v4: number): number[] {
  return [0, 0, 0xffff, v4];
}

function hostMask(netBits: number): number {
  return netBits >= 32 ? 0 : netBits <= 0 ? 0xffffffff : (0xffffffff >>> netBits);
}

function maskWords(words: readonly number[], prefix: number): number[] {
  return words.map((w, i) => {
    const bits = Math.min(32, Math.max(0, prefix - i * 32));
    return (w & ~hostMask(bits)) >>> 0;
  });
}

function sameWords(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
