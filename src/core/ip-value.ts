import { formatV6Groups, type Family } from './address.js';

/**
 * An IP address as numbers, parsed once so that every rule check compares integers and never
 * text. IPv4 is one word; IPv6 is four words, most significant first. Every word is an unsigned
 * 32-bit integer (0 to 2^32-1) held in a plain number.
 *
 * IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is returned as IPv4, the same rule `canonicalIp` applies,
 * so a caller that skipped canonicalisation still gets IPv4 rules applied to IPv4 clients.
 */
export interface IpValue {
  readonly family: Family;
  readonly words: readonly number[];
}

/**
 * Parses an IP literal as `canonicalIp` produces it (also any other valid spelling of IPv6,
 * in any letter case). Returns undefined for anything else, including zones, brackets, ports
 * and the non-standard IPv4 spellings (`127.1`, `0x7f.0.0.1`, `0177.0.0.1`, `2130706433`) that
 * `net.isIP` also refuses. Hot path: one small array, no regex, no splitting.
 */
export function parseIpValue(address: string): IpValue | undefined {
  const v4 = parseIpv4(address, 0, address.length);
  if (v4 >= 0) return { family: 4, words: [v4] };
  const w = parseIpv6(address);
  if (!w) return undefined;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return { family: 4, words: [w[3]!] };
  return { family: 6, words: w };
}

/** Dotted-decimal text of a uint32 IPv4 value. */
export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** Canonical text of an IpValue (RFC 5952 for IPv6, as `canonicalIp` writes it). */
export function formatIpValue(ip: IpValue): string {
  if (ip.family === 4) return formatIpv4(ip.words[0]!);
  const g: number[] = [];
  for (const w of ip.words) g.push(w >>> 16, w & 0xffff);
  return formatV6Groups(g);
}

/**
 * Strict dotted-decimal IPv4 in `s[from, to)`: four parts 0-255 without leading zeros (what
 * `net.isIPv4` accepts). Returns the uint32 value, or -1.
 */
function parseIpv4(s: string, from: number, to: number): number {
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let leadingZero = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      acc = acc * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 0) leadingZero = c === 48;
      else if (leadingZero || digits === 3) return -1;
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return acc * 256 + part;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * RFC 4291 §2.2 text forms: eight groups of 1-4 hex digits, one `::` standing for one or more
 * zero groups, and optionally a dotted-decimal IPv4 in place of the last two groups.
 * Returns four uint32 words, or undefined.
 */
function parseIpv6(s: string): number[] | undefined {
  const n = s.length;
  if (n < 2 || n > 45) return undefined;
  const g = [0, 0, 0, 0, 0, 0, 0, 0];
  let count = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    if (count === 8) return undefined;
    let j = i;
    let v = 0;
    let d: number;
    while (j < n && (d = hexDigit(s.charCodeAt(j))) >= 0) {
      v = v * 16 + d;
      j++;
    }
    if (j < n && s.charCodeAt(j) === 46) {
      if (count > 6) return undefined;
      const v4 = parseIpv4(s, i, n);
      if (v4 < 0) return undefined;
      g[count++] = v4 >>> 16;
      g[count++] = v4 & 0xffff;
      break;
    }
    if (j === i || j - i > 4) return undefined;
    g[count++] = v;
    if (j === n) break;
    if (s.charCodeAt(j) !== 58) return undefined;
    j++;
    if (j < n && s.charCodeAt(j) === 58) {
      if (gap >= 0) return undefined;
      gap = count;
      j++;
    } else if (j === n) {
      return undefined;
    }
    i = j;
  }
  if (gap < 0 ? count !== 8 : count > 7) return undefined;
  if (gap >= 0) {
    const tail = count - gap;
    for (let k = 0; k < tail; k++) g[7 - k] = g[count - 1 - k]!;
    for (let k = gap; k < 8 - tail; k++) g[k] = 0;
  }
  return [
    (g[0]! * 65536 + g[1]!),
    (g[2]! * 65536 + g[3]!),
    (g[4]! * 65536 + g[5]!),
    (g[6]! * 65536 + g[7]!),
  ];
}
