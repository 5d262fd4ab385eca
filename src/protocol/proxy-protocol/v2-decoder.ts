import { formatV6, type Endpoint } from '../../core/address.js';
import { crc32cWithZeroedField } from './crc32c.js';
import { ProxyHeaderError } from './errors.js';
import { readTlvArea } from './tlv.js';
import {
  V2_FIXED_BYTES,
  V2_SIGNATURE,
  type ProxyAddresses,
  type ProxyDecodeResult,
  type ProxyHeaderV2,
  type UnixAddresses,
  type V2Family,
  type V2Transport,
} from './types.js';

/*
 * PROXY v2 (spec 2.2): 12-byte signature, ver_cmd, fam, len (u16 BE), address block, TLVs up to
 * 16 + len. Every field is checked as soon as its byte arrives, and len against the cap before
 * waiting for the body, so an oversized or wrong header costs no buffering (PP-3).
 */

/** Address block size by fam byte; the seven valid combinations of spec 2.2, -1 for the rest. */
const ADDRESS_BYTES = new Int16Array(256).fill(-1);
ADDRESS_BYTES[0x00] = 0;
ADDRESS_BYTES[0x11] = 12;
ADDRESS_BYTES[0x12] = 12;
ADDRESS_BYTES[0x21] = 36;
ADDRESS_BYTES[0x22] = 36;
ADDRESS_BYTES[0x31] = 216;
ADDRESS_BYTES[0x32] = 216;

const FAMILIES: readonly V2Family[] = ['AF_UNSPEC', 'AF_INET', 'AF_INET6', 'AF_UNIX'];
const TRANSPORTS: readonly V2Transport[] = ['UNSPEC', 'STREAM', 'DGRAM'];
const UNIX_PATH_BYTES = 108;

const NEED_MORE: ProxyDecodeResult = Object.freeze({ kind: 'need-more' });

export interface V2DecodeSettings {
  readonly validateTlvs: boolean;
  readonly maxHeaderBytes: number;
  readonly final: boolean;
}

/** Decodes a v2 header at the start of `buf`. Throws ProxyHeaderError; see decodeProxyHeader. */
export function decodeV2(buf: Buffer, s: V2DecodeSettings): ProxyDecodeResult {
  const n = buf.length;
  const sig = Math.min(n, V2_SIGNATURE.length);
  for (let i = 0; i < sig; i++) {
    if (buf[i] !== V2_SIGNATURE[i]) throw new ProxyHeaderError('not-proxy', 'input does not start with the v2 signature', i);
  }
  if (n < 13) return needMore(s, n);
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyHeaderError('bad-version', `version nibble ${verCmd >> 4}, expected 2`, 12);
  const command = verCmd & 0x0f;
  if (command > 1) throw new ProxyHeaderError('bad-command', `command ${command} is neither LOCAL nor PROXY`, 12);
  if (n < 14) return needMore(s, n);
  const fam = buf[13]!;
  const addressBytes = ADDRESS_BYTES[fam]!;
  if (addressBytes < 0) throw new ProxyHeaderError('bad-family', `family/transport byte 0x${fam.toString(16)}`, 13);
  if (n < V2_FIXED_BYTES) return needMore(s, n);
  const total = V2_FIXED_BYTES + buf.readUInt16BE(14);
  if (total > s.maxHeaderBytes) {
    throw new ProxyHeaderError('too-large', `header of ${total} bytes exceeds the ${s.maxHeaderBytes}-byte limit`, 14);
  }
  // LOCAL too: the block is discarded but must be there, so the TLVs after it have a fixed start.
  if (total - V2_FIXED_BYTES < addressBytes) {
    throw new ProxyHeaderError('bad-length', `len ${total - V2_FIXED_BYTES} is shorter than the ${addressBytes}-byte address block`, 14);
  }
  if (n < total) return needMore(s, n);

  const tlvStart = V2_FIXED_BYTES + addressBytes;
  const area = readTlvArea(buf, tlvStart, total, s.validateTlvs);
  if (area.crcValueAt >= 0) {
    const expected = buf.readUInt32BE(area.crcValueAt);
    if (crc32cWithZeroedField(buf, 0, total, area.crcValueAt) !== expected) {
      throw new ProxyHeaderError('crc-mismatch', 'CRC32C TLV does not match the header', area.crcValueAt);
    }
  }
  const proxy = command === 1;
  const familyNibble = fam >> 4;
  const header: ProxyHeaderV2 = {
    version: 2,
    command: proxy ? 'PROXY' : 'LOCAL',
    family: FAMILIES[familyNibble]!,
    transport: TRANSPORTS[fam & 0x0f]!,
    addresses: proxy && (familyNibble === 1 || familyNibble === 2) ? readIpAddresses(buf, familyNibble) : undefined,
    unix: proxy && familyNibble === 3 ? readUnixAddresses(buf) : undefined,
    tlvs: area.tlvs,
  };
  return { kind: 'ok', header, length: total };
}

function needMore(s: V2DecodeSettings, at: number): ProxyDecodeResult {
  if (s.final) throw new ProxyHeaderError('truncated', 'input ended inside a v2 header', at);
  return NEED_MORE;
}

function readIpAddresses(buf: Buffer, familyNibble: number): ProxyAddresses {
  const at = V2_FIXED_BYTES;
  if (familyNibble === 1) {
    return {
      source: { address: v4Text(buf, at), port: buf.readUInt16BE(at + 8), family: 4 },
      destination: { address: v4Text(buf, at + 4), port: buf.readUInt16BE(at + 10), family: 4 },
    };
  }
  return {
    source: v6Endpoint(buf, at, buf.readUInt16BE(at + 32)),
    destination: v6Endpoint(buf, at + 16, buf.readUInt16BE(at + 34)),
  };
}

function v4Text(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * Same result as core canonicalIp() on the address's text (a test checks this on random bytes),
 * without the text round trip on the per-datagram path: IPv4-mapped becomes IPv4, the rest is
 * RFC 5952 text.
 */
export function v6Endpoint(b: Buffer, at: number, port: number): Endpoint {
  let mapped = b[at + 10] === 0xff && b[at + 11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = b[at + i] === 0;
  if (mapped) return { address: v4Text(b, at + 12), port, family: 4 };
  return { address: formatV6(b.subarray(at, at + 16)), port, family: 6 };
}

function readUnixAddresses(buf: Buffer): UnixAddresses {
  const at = V2_FIXED_BYTES;
  return { source: unixPath(buf, at), destination: unixPath(buf, at + UNIX_PATH_BYTES) };
}

function unixPath(buf: Buffer, at: number): string {
  const field = buf.subarray(at, at + UNIX_PATH_BYTES);
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul < 0 ? UNIX_PATH_BYTES : nul);
}
