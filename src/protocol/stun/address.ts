import { canonicalIp, formatV6, ipv6Bytes, type Endpoint } from '../../core/address.js';
import { MAGIC_COOKIE } from './constants.js';
import { stunInvalid } from './header.js';

/**
 * Address attribute values (RFC 8489 §14.1, §14.2): MAPPED-ADDRESS and ALTERNATE-SERVER in the
 * clear; XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS obfuscated with the magic
 * cookie (port, IPv4) or cookie ‖ transaction id (IPv6). Layout: 0, family (1 | 2), port, address.
 */

const FAMILY_V4 = 0x01;
const FAMILY_V6 = 0x02;

/** Bytes of the attribute value (not counting its 4-byte attribute header) for a family. */
export function addressValueBytes(family: 4 | 6): number {
  return family === 4 ? 8 : 20;
}

export function encodeAddress(ep: Endpoint): Buffer {
  const ip = parseIp(ep);
  const out = Buffer.alloc(4 + ip.length);
  out[1] = ip.length === 4 ? FAMILY_V4 : FAMILY_V6;
  out.writeUInt16BE(ep.port, 2);
  out.set(ip, 4);
  return out;
}

export function decodeAddress(value: Buffer): Endpoint {
  const { family, port, ip } = splitAddress(value);
  return toEndpoint(family, port, ip);
}

export function encodeXorAddress(ep: Endpoint, transactionId: Uint8Array): Buffer {
  const out = encodeAddress(ep);
  xorInPlace(out, transactionId);
  return out;
}

export function decodeXorAddress(value: Buffer, transactionId: Uint8Array): Endpoint {
  const { family, port, ip } = splitAddress(value);
  const copy = Buffer.from(ip);
  const mask = xorMask(transactionId);
  for (let i = 0; i < copy.length; i++) copy[i]! ^= mask[i]!;
  return toEndpoint(family, port ^ (MAGIC_COOKIE >>> 16), copy);
}

function xorInPlace(out: Buffer, transactionId: Uint8Array): void {
  out.writeUInt16BE(out.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16), 2);
  const mask = xorMask(transactionId);
  for (let i = 4; i < out.length; i++) out[i]! ^= mask[i - 4]!;
}

function xorMask(transactionId: Uint8Array): Buffer {
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(MAGIC_COOKIE, 0);
  mask.set(transactionId, 4);
  return mask;
}

function splitAddress(value: Buffer): { family: 4 | 6; port: number; ip: Buffer } {
  if (value.length < 4) throw stunInvalid(`address attribute of ${value.length} bytes`);
  const fam = value[1];
  const family = fam === FAMILY_V4 ? 4 : fam === FAMILY_V6 ? 6 : undefined;
  if (family === undefined) throw stunInvalid(`address family 0x${fam!.toString(16)} is unknown`);
  if (value.length !== addressValueBytes(family)) throw stunInvalid(`IPv${family} address attribute of ${value.length} bytes`);
  return { family, port: value.readUInt16BE(2), ip: value.subarray(4) };
}

function toEndpoint(family: 4 | 6, port: number, ip: Uint8Array): Endpoint {
  if (family === 4) return { address: `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`, port, family };
  // An IPv4-mapped IPv6 value stays IPv6 on the wire, but every address in Sluice is canonical.
  const c = canonicalIp(formatV6(ip))!;
  return { address: c.address, port, family: c.family };
}

function parseIp(ep: Endpoint): Uint8Array {
  if (!Number.isInteger(ep.port) || ep.port < 0 || ep.port > 0xffff) throw stunInvalid(`port ${ep.port} is out of range`);
  const c = canonicalIp(ep.address);
  if (!c) throw stunInvalid(`"${ep.address}" is not an IP address`);
  if (c.family === 4) return Uint8Array.from(c.address.split('.').map(Number));
  return ipv6Bytes(c.address)!;
}
