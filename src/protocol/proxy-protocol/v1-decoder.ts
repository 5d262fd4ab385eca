import net from 'node:net';
import { canonicalIp, type Endpoint } from '../../core/address.js';
import { ProxyHeaderError } from './errors.js';
import { V1_MAX_HEADER_BYTES, type ProxyDecodeResult, type ProxyHeaderV1 } from './types.js';

/*
 * PROXY v1 (spec 2.1): "PROXY" SP ("TCP4" | "TCP6" | "UNKNOWN") SP src SP dst SP sport SP dport CRLF,
 * exactly one space between fields, CRLF within the first 107 bytes, no bare CR or LF. Anything that
 * does not match aborts "as early as possible", so the partial line is checked byte by byte while
 * bytes arrive, and a sender cannot keep a pre-header connection open with garbage.
 */

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const SIGNATURE = Buffer.from('PROXY ', 'latin1');
const TCP = Buffer.from('TCP', 'latin1');
const UNKNOWN = Buffer.from('UNKNOWN', 'latin1');
/** Index of the first byte after "PROXY TCP4 " / "PROXY TCP6 ". */
const TCP_FIELDS_AT = 11;
/** Longest lines, CRLF included (spec 2.1): the CR may sit at most at length - 2. */
const MAX_LINE = { TCP4: 56, TCP6: 104, UNKNOWN: V1_MAX_HEADER_BYTES } as const;

const NEED_MORE: ProxyDecodeResult = Object.freeze({ kind: 'need-more' });

type Protocol = ProxyHeaderV1['protocol'];

/** Decodes a v1 header at the start of `buf`. Throws ProxyHeaderError; see decodeProxyHeader. */
export function decodeV1(buf: Buffer, final: boolean): ProxyDecodeResult {
  const n = buf.length;
  const sig = Math.min(n, SIGNATURE.length);
  for (let i = 0; i < sig; i++) {
    if (buf[i] !== SIGNATURE[i]) throw new ProxyHeaderError('not-proxy', 'input does not start with "PROXY "', i);
  }
  if (n <= SIGNATURE.length) return needMore(final, n);

  const protocol = readProtocol(buf);
  if (protocol === undefined) return needMore(final, n);
  const max = MAX_LINE[protocol];
  const end = findLineEnd(buf, protocol, max);
  if (end < 0) {
    if (n >= max) throw new ProxyHeaderError('too-long', `no CRLF within ${max} bytes`, max);
    return needMore(final, n);
  }
  const length = end + 2;
  if (protocol === 'UNKNOWN') {
    // "the receiver must ignore anything presented before the CRLF" (spec 2.1)
    return { kind: 'ok', header: { version: 1, protocol, addresses: undefined }, length };
  }
  return { kind: 'ok', header: { version: 1, protocol, addresses: readTcpFields(buf, protocol, end) }, length };
}

function needMore(final: boolean, at: number): ProxyDecodeResult {
  if (final) throw new ProxyHeaderError('truncated', 'input ended inside a v1 header', at);
  return NEED_MORE;
}

/** The protocol token, undefined while too few bytes are in; throws at the first byte that cannot match. */
function readProtocol(buf: Buffer): Protocol | undefined {
  const at = SIGNATURE.length;
  if (buf[at] === TCP[0]) {
    // "TCP4 " or "TCP6 "
    mustMatch(buf, at, TCP);
    const digit = buf[at + 3];
    if (digit !== undefined && digit !== 0x34 && digit !== 0x36) throw badProtocol(at + 3);
    const sp = buf[at + 4];
    if (sp === undefined) return undefined;
    if (sp !== SP) throw badProtocol(at + 4);
    return digit === 0x34 ? 'TCP4' : 'TCP6';
  }
  if (buf[at] === UNKNOWN[0]) {
    // "UNKNOWN" then SP or CR
    mustMatch(buf, at, UNKNOWN);
    const next = buf[at + UNKNOWN.length];
    if (next === undefined) return undefined;
    if (next !== SP && next !== CR) throw badProtocol(at + UNKNOWN.length);
    return 'UNKNOWN';
  }
  throw badProtocol(at);
}

/** Throws at the first available byte from `at` that differs from `literal` (a partial match passes). */
function mustMatch(buf: Buffer, at: number, literal: Buffer): void {
  const end = Math.min(buf.length, at + literal.length);
  for (let i = at; i < end; i++) if (buf[i] !== literal[i - at]) throw badProtocol(i);
}

function badProtocol(at: number): ProxyHeaderError {
  return new ProxyHeaderError('bad-syntax', 'protocol must be "TCP4", "TCP6" or "UNKNOWN"', at);
}

/**
 * Index of the CR of the terminating CRLF, or -1 while it has not arrived. For TCP4/TCP6 every byte
 * before it must be able to belong to a valid line (address characters, single spaces, at most five
 * fields), so a wrong byte is refused the moment it arrives.
 */
function findLineEnd(buf: Buffer, protocol: Protocol, max: number): number {
  const limit = Math.min(buf.length, max);
  const tcp = protocol !== 'UNKNOWN';
  let spaces = 0;
  for (let i = SIGNATURE.length; i < limit; i++) {
    const c = buf[i]!;
    if (c === CR) {
      if (i + 1 >= max) throw new ProxyHeaderError('too-long', `no CRLF within ${max} bytes`, i);
      if (i + 1 >= buf.length) return -1;
      if (buf[i + 1] !== LF) throw new ProxyHeaderError('bad-syntax', 'CR not followed by LF', i);
      return i;
    }
    if (c === LF) throw new ProxyHeaderError('bad-syntax', 'LF without CR', i);
    if (!tcp || i < TCP_FIELDS_AT) continue;
    if (c === SP) {
      if (buf[i - 1] === SP) throw new ProxyHeaderError('bad-syntax', 'empty field (two spaces)', i);
      if (++spaces > 3) throw new ProxyHeaderError('bad-syntax', 'more than four fields after the protocol', i);
    } else if (!isFieldChar(c, protocol === 'TCP6')) {
      throw new ProxyHeaderError('bad-syntax', `byte 0x${c.toString(16)} cannot appear in a ${protocol} line`, i);
    }
  }
  return -1;
}

function isFieldChar(c: number, v6: boolean): boolean {
  if ((c >= 0x30 && c <= 0x39) || c === 0x2e) return true; // digits, '.' (also in v4-embedded IPv6)
  if (!v6) return false;
  return c === 0x3a || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46); // ':', a-f, A-F
}

/** Parses "src dst sport dport" between TCP_FIELDS_AT and the CR at `end`. */
function readTcpFields(buf: Buffer, protocol: 'TCP4' | 'TCP6', end: number) {
  const fields = buf.toString('latin1', TCP_FIELDS_AT, end).split(' ');
  if (fields.length !== 4 || fields.some((f) => f.length === 0)) {
    throw new ProxyHeaderError('bad-syntax', `${protocol} needs exactly: src dst sport dport`, TCP_FIELDS_AT);
  }
  const family = protocol === 'TCP4' ? 4 : 6;
  const source = endpoint(fields[0]!, fields[2]!, family, protocol);
  const destination = endpoint(fields[1]!, fields[3]!, family, protocol);
  return { source, destination };
}

function endpoint(address: string, port: string, family: 4 | 6, protocol: string): Endpoint {
  // The byte checks above already refused '%' (zones) and anything but hex, ':' and '.'; net.isIP
  // refuses leading zeros in IPv4 octets ("01.2.3.4", octal confusion).
  const ip = net.isIP(address) === family ? canonicalIp(address) : undefined;
  if (ip === undefined) throw new ProxyHeaderError('bad-address', `"${address}" is not a ${protocol} address`, TCP_FIELDS_AT);
  return { address: ip.address, port: parsePort(port), family: ip.family };
}

function parsePort(text: string): number {
  // Plain decimal, no sign, no leading zero (spec 2.1 and the go-proxyproto vectors), 0-65535.
  const ok = text.length <= 5 && (text === '0' || text.charCodeAt(0) !== 0x30) && /^[0-9]+$/.test(text);
  const port = ok ? Number(text) : -1;
  if (port < 0 || port > 65535) throw new ProxyHeaderError('bad-port', `"${text}" is not a port (0-65535)`, TCP_FIELDS_AT);
  return port;
}
