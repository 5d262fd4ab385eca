import { ipv6Bytes } from '../../core/address.js';
import { crc32cWithZeroedField } from './crc32c.js';
import { canonicalInput, type IpPort } from './endpoint-input.js';
import {
  PP2_TYPE,
  V2_FIXED_BYTES,
  V2_SIGNATURE,
  type TlvInput,
  type UnixAddresses,
  type V2Command,
  type V2Family,
  type V2Transport,
} from './types.js';

/**
 * What to put in a v2 header. A decoded ProxyHeaderV2 is a valid input, so a received header can be
 * forwarded as it came (with the CRC32C recomputed).
 */
export interface ProxyV2EncodeInput {
  /** Default 'PROXY'. LOCAL tells the receiver to use the connection's own endpoints (health checks). */
  readonly command?: V2Command;
  /** Default 'STREAM'. Ignored (UNSPEC is written) when the family is AF_UNSPEC, the only valid pairing. */
  readonly transport?: V2Transport;
  /**
   * Default: AF_INET when both addresses are IPv4, AF_INET6 when either is IPv6 (an IPv4 one is then
   * written IPv4-mapped, so a mixed pair keeps the real client address), AF_UNIX with `unix`,
   * AF_UNSPEC with neither. Set it to force AF_INET6 for IPv4 addresses; LOCAL with an IP family
   * and no addresses writes a zero address block.
   */
  readonly family?: V2Family;
  readonly addresses?: { readonly source: IpPort; readonly destination: IpPort } | undefined;
  readonly unix?: UnixAddresses | undefined;
  /** Written in order. A 4-byte CRC32C TLV among them is filled with the computed checksum. */
  readonly tlvs?: readonly TlvInput[];
  /** Add a CRC32C TLV (first, as AWS NLB does) when `tlvs` has none. Default false. */
  readonly crc32c?: boolean;
}

const UNIX_PATH_BYTES = 108;
const MAX_LEN = 0xffff;
const FAMILY_NIBBLE: Record<V2Family, number> = { AF_UNSPEC: 0, AF_INET: 1, AF_INET6: 2, AF_UNIX: 3 };
const TRANSPORT_NIBBLE: Record<V2Transport, number> = { UNSPEC: 0, STREAM: 1, DGRAM: 2 };
const ADDRESS_BYTES: Record<V2Family, number> = { AF_UNSPEC: 0, AF_INET: 12, AF_INET6: 36, AF_UNIX: 216 };
const CRC_TLV: TlvInput = { type: PP2_TYPE.CRC32C, value: new Uint8Array(4) };

interface Plan {
  readonly verCmd: number;
  readonly fam: number;
  readonly family: V2Family;
  readonly ips: readonly [Uint8Array, Uint8Array, number, number] | undefined; // src, dst, sport, dport
  readonly unix: readonly [Buffer, Buffer] | undefined;
  readonly tlvs: readonly TlvInput[];
  readonly total: number;
}

/**
 * Encodes a v2 header into a new Buffer of exactly its length. Encode once per connection or UDP
 * session and reuse the Buffer: for UDP `every` mode, `socket.send([header, payload], ...)` sends it
 * in front of each datagram without a copy.
 * Throws SluiceError SLUICE_ERR_ADDRESS_INVALID for a bad address or port, RangeError for an input
 * that cannot be encoded (family and addresses disagree, a TLV over 65535 bytes, len over 65535).
 */
export function encodeProxyV2(input: ProxyV2EncodeInput): Buffer {
  const plan = planV2(input);
  const out = Buffer.allocUnsafe(plan.total);
  writeV2(plan, out, 0);
  return out;
}

/** Writes the header into `target` at `offset` (no allocation for the output); returns its length. */
export function encodeProxyV2Into(input: ProxyV2EncodeInput, target: Uint8Array, offset = 0): number {
  const plan = planV2(input);
  if (!Number.isInteger(offset) || offset < 0 || offset + plan.total > target.length) {
    throw new RangeError(`a ${plan.total}-byte v2 header does not fit at offset ${offset} of ${target.length} bytes`);
  }
  writeV2(plan, target, offset);
  return plan.total;
}

/** Length of the header encodeProxyV2 would produce, for sizing a buffer. */
export function proxyV2Length(input: ProxyV2EncodeInput): number {
  return planV2(input).total;
}

function planV2(input: ProxyV2EncodeInput): Plan {
  const command = input.command ?? 'PROXY';
  if (command !== 'PROXY' && command !== 'LOCAL') throw new RangeError(`unknown v2 command ${String(command)}`);
  const { addresses, unix } = input;
  if (addresses !== undefined && unix !== undefined) throw new RangeError('give either IP addresses or unix paths, not both');

  let family = input.family;
  let ips: Plan['ips'];
  if (addresses !== undefined) {
    const s = canonicalInput(addresses.source, 'source');
    const d = canonicalInput(addresses.destination, 'destination');
    family ??= s.family === 4 && d.family === 4 ? 'AF_INET' : 'AF_INET6';
    if (family === 'AF_INET') {
      if (s.family !== 4 || d.family !== 4) throw new RangeError('AF_INET needs two IPv4 addresses');
      ips = [v4Bytes(s.address), v4Bytes(d.address), s.port, d.port];
    } else if (family === 'AF_INET6') {
      ips = [v6OrMapped(s.address, s.family), v6OrMapped(d.address, d.family), s.port, d.port];
    } else {
      throw new RangeError(`${family} cannot carry IP addresses`);
    }
  }
  let unixPaths: Plan['unix'];
  if (unix !== undefined) {
    family ??= 'AF_UNIX';
    if (family !== 'AF_UNIX') throw new RangeError(`${family} cannot carry unix paths`);
    unixPaths = [unixPath(unix.source), unixPath(unix.destination)];
  }
  family ??= 'AF_UNSPEC';
  if (!Object.hasOwn(FAMILY_NIBBLE, family)) throw new RangeError(`unknown v2 family ${String(family)}`);
  if (command === 'PROXY' && family !== 'AF_UNSPEC' && ips === undefined && unixPaths === undefined) {
    throw new RangeError(`PROXY with ${family} needs addresses (use LOCAL, or AF_UNSPEC, when there are none)`);
  }
  const transport = family === 'AF_UNSPEC' ? 'UNSPEC' : (input.transport ?? 'STREAM');
  if (!Object.hasOwn(TRANSPORT_NIBBLE, transport) || (transport === 'UNSPEC') !== (family === 'AF_UNSPEC')) {
    throw new RangeError(`${family} with transport ${String(transport)} is not a valid v2 combination`);
  }

  const tlvs = withCrc(input.tlvs ?? [], input.crc32c === true);
  let len = ADDRESS_BYTES[family];
  for (const t of tlvs) {
    if (!Number.isInteger(t.type) || t.type < 0 || t.type > 0xff) throw new RangeError(`TLV type ${t.type} is not a byte`);
    if (t.value.length > MAX_LEN) throw new RangeError(`TLV 0x${t.type.toString(16)} value of ${t.value.length} bytes (max ${MAX_LEN})`);
    len += 3 + t.value.length;
  }
  if (len > MAX_LEN) throw new RangeError(`v2 header body of ${len} bytes exceeds ${MAX_LEN}`);
  return {
    verCmd: 0x20 | (command === 'PROXY' ? 1 : 0),
    fam: (FAMILY_NIBBLE[family] << 4) | TRANSPORT_NIBBLE[transport],
    family,
    ips,
    unix: unixPaths,
    tlvs,
    total: V2_FIXED_BYTES + len,
  };
}

function withCrc(tlvs: readonly TlvInput[], wanted: boolean): readonly TlvInput[] {
  let crcs = 0;
  for (const t of tlvs) {
    if (t.type !== PP2_TYPE.CRC32C) continue;
    if (t.value.length !== 4) throw new RangeError(`CRC32C TLV must be 4 bytes, got ${t.value.length}`);
    crcs++;
  }
  if (crcs > 1) throw new RangeError('more than one CRC32C TLV');
  return wanted && crcs === 0 ? [CRC_TLV, ...tlvs] : tlvs;
}

function writeV2(plan: Plan, out: Uint8Array, offset: number): void {
  out.set(V2_SIGNATURE, offset);
  out[offset + 12] = plan.verCmd;
  out[offset + 13] = plan.fam;
  const len = plan.total - V2_FIXED_BYTES;
  out[offset + 14] = len >> 8;
  out[offset + 15] = len & 0xff;
  let p = offset + V2_FIXED_BYTES;
  const blockEnd = p + ADDRESS_BYTES[plan.family];
  out.fill(0, p, blockEnd);
  if (plan.ips !== undefined) {
    const [src, dst, sport, dport] = plan.ips;
    out.set(src, p);
    out.set(dst, p + src.length);
    p += 2 * src.length;
    writeU16(out, p, sport);
    writeU16(out, p + 2, dport);
  } else if (plan.unix !== undefined) {
    out.set(plan.unix[0], p);
    out.set(plan.unix[1], p + UNIX_PATH_BYTES);
  }
  p = blockEnd;
  let crcAt = -1;
  for (const t of plan.tlvs) {
    out[p] = t.type;
    writeU16(out, p + 1, t.value.length);
    if (t.type === PP2_TYPE.CRC32C) crcAt = p + 3;
    out.set(t.value, p + 3);
    p += 3 + t.value.length;
  }
  if (crcAt >= 0) {
    const crc = crc32cWithZeroedField(out, offset, offset + plan.total, crcAt);
    writeU16(out, crcAt, crc >>> 16);
    writeU16(out, crcAt + 2, crc & 0xffff);
  }
}

function writeU16(out: Uint8Array, at: number, v: number): void {
  out[at] = v >> 8;
  out[at + 1] = v & 0xff;
}

/** Bytes of a canonical dotted IPv4 text. */
function v4Bytes(address: string): Uint8Array {
  const out = new Uint8Array(4);
  let part = 0;
  let i = 0;
  for (let k = 0; k < address.length; k++) {
    const c = address.charCodeAt(k);
    if (c === 0x2e) {
      out[i++] = part;
      part = 0;
    } else {
      part = part * 10 + (c - 0x30);
    }
  }
  out[i] = part;
  return out;
}

function v6OrMapped(address: string, family: 4 | 6): Uint8Array {
  if (family === 6) return ipv6Bytes(address)!;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4Bytes(address), 12);
  return out;
}

function unixPath(path: string): Buffer {
  const b = Buffer.from(path, 'utf8');
  if (b.length > UNIX_PATH_BYTES) throw new RangeError(`unix path of ${b.length} bytes (max ${UNIX_PATH_BYTES})`);
  if (b.includes(0)) throw new RangeError('unix path contains a NUL byte');
  return b;
}
