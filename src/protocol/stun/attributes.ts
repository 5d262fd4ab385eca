import type { Endpoint } from '../../core/address.js';
import { StunAttr } from './constants.js';
import { addressValueBytes, decodeAddress, decodeXorAddress, encodeAddress, encodeXorAddress } from './address.js';
import { stunInvalid } from './header.js';

/**
 * Typed values of the attributes ICE and TURN use. A codec turns a value into attribute bytes
 * (without the 4-byte type/length header and without padding) and back. Decoders throw
 * SluiceError('SLUICE_ERR_STUN_INVALID'); encoders throw it for values the wire cannot carry.
 * MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are not here: the message encoder
 * computes them (message.ts).
 */
export interface AttributeCodec<T> {
  readonly type: number;
  readonly name: string;
  /** `transactionId` matters only to the XOR address attributes. */
  encode(value: T, transactionId: Uint8Array): Buffer;
  decode(value: Buffer, transactionId: Uint8Array): T;
}

export interface ErrorCodeValue {
  /** 300-699. */
  readonly code: number;
  /** UTF-8, fewer than 128 characters (RFC 8489 §14.8). May be empty. */
  readonly reason: string;
}

export interface PasswordAlgorithmValue {
  /** PasswordAlgorithm.Md5 (1) or .Sha256 (2); others are carried as numbers. */
  readonly algorithm: number;
  readonly parameters: Buffer;
}

/** Longest text value in bytes: 763 for REALM, NONCE, SOFTWARE, reason phrases; 513 for USERNAME. */
const MAX_TEXT_BYTES = 763;
const MAX_USERNAME_BYTES = 513;

function codec<T>(type: number, name: string, encode: (v: T, tid: Uint8Array) => Buffer, decode: (b: Buffer, tid: Uint8Array) => T): AttributeCodec<T> {
  return { type, name, encode, decode };
}

function fixed(name: string, value: Buffer, bytes: number): void {
  if (value.length !== bytes) throw stunInvalid(`${name} must be ${bytes} bytes, got ${value.length}`);
}

function text(type: number, name: string, maxBytes: number): AttributeCodec<string> {
  return codec(
    type,
    name,
    (v) => {
      const b = Buffer.from(v, 'utf8');
      if (b.length > maxBytes) throw stunInvalid(`${name} of ${b.length} bytes exceeds ${maxBytes}`);
      return b;
    },
    (b) => {
      if (b.length > maxBytes) throw stunInvalid(`${name} of ${b.length} bytes exceeds ${maxBytes}`);
      return b.toString('utf8');
    },
  );
}

function u32(type: number, name: string): AttributeCodec<number> {
  return codec(
    type,
    name,
    (v) => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw stunInvalid(`${name} ${v} is not a 32-bit unsigned integer`);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(v);
      return b;
    },
    (b) => (fixed(name, b, 4), b.readUInt32BE(0)),
  );
}

function u64(type: number, name: string): AttributeCodec<bigint> {
  return codec(
    type,
    name,
    (v) => {
      if (v < 0n || v > 0xffffffffffffffffn) throw stunInvalid(`${name} is not a 64-bit unsigned integer`);
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(v);
      return b;
    },
    (b) => (fixed(name, b, 8), b.readBigUInt64BE(0)),
  );
}

function flag(type: number, name: string): AttributeCodec<true> {
  return codec(type, name, () => Buffer.alloc(0), (b) => (fixed(name, b, 0), true));
}

function opaque(type: number, name: string, bytes?: number): AttributeCodec<Buffer> {
  return codec(
    type,
    name,
    (v) => {
      if (bytes !== undefined) fixed(name, v, bytes);
      if (v.length > 0xffff) throw stunInvalid(`${name} of ${v.length} bytes does not fit an attribute`);
      return Buffer.from(v);
    },
    (b) => (bytes !== undefined && fixed(name, b, bytes), b),
  );
}

function plainAddress(type: number, name: string): AttributeCodec<Endpoint> {
  return codec(type, name, (v) => encodeAddress(v), (b) => decodeAddress(b));
}

function xorAddress(type: number, name: string): AttributeCodec<Endpoint> {
  return codec(type, name, (v, tid) => encodeXorAddress(v, tid), (b, tid) => decodeXorAddress(b, tid));
}

// RFC 8489 attributes.
export const MappedAddress = plainAddress(StunAttr.MappedAddress, 'MAPPED-ADDRESS');
export const XorMappedAddress = xorAddress(StunAttr.XorMappedAddress, 'XOR-MAPPED-ADDRESS');
export const AlternateServer = plainAddress(StunAttr.AlternateServer, 'ALTERNATE-SERVER');
export const Username = text(StunAttr.Username, 'USERNAME', MAX_USERNAME_BYTES);
export const Userhash = opaque(StunAttr.Userhash, 'USERHASH', 32);
export const Realm = text(StunAttr.Realm, 'REALM', MAX_TEXT_BYTES);
export const Nonce = text(StunAttr.Nonce, 'NONCE', MAX_TEXT_BYTES);
export const Software = text(StunAttr.Software, 'SOFTWARE', MAX_TEXT_BYTES);
export const AlternateDomain = text(StunAttr.AlternateDomain, 'ALTERNATE-DOMAIN', MAX_TEXT_BYTES);

export const ErrorCode = codec<ErrorCodeValue>(
  StunAttr.ErrorCode,
  'ERROR-CODE',
  (v) => {
    if (!Number.isInteger(v.code) || v.code < 300 || v.code > 699) throw stunInvalid(`error code ${v.code} is not in 300-699`);
    const reason = Buffer.from(v.reason, 'utf8');
    if (reason.length > MAX_TEXT_BYTES) throw stunInvalid(`reason phrase of ${reason.length} bytes exceeds ${MAX_TEXT_BYTES}`);
    const b = Buffer.alloc(4 + reason.length);
    b[2] = Math.floor(v.code / 100);
    b[3] = v.code % 100;
    b.set(reason, 4);
    return b;
  },
  (b) => {
    if (b.length < 4 || b.length > 4 + MAX_TEXT_BYTES) throw stunInvalid(`ERROR-CODE of ${b.length} bytes`);
    const cls = b[2]! & 0x07;
    const num = b[3]!;
    if (cls < 3 || cls > 6 || num > 99) throw stunInvalid(`ERROR-CODE class ${cls} number ${num} is out of range`);
    return { code: cls * 100 + num, reason: b.toString('utf8', 4) };
  },
);

export const UnknownAttributes = codec<readonly number[]>(
  StunAttr.UnknownAttributes,
  'UNKNOWN-ATTRIBUTES',
  (v) => {
    const b = Buffer.alloc(v.length * 2);
    v.forEach((t, i) => b.writeUInt16BE(t, i * 2));
    return b;
  },
  (b) => {
    if (b.length % 2 !== 0) throw stunInvalid(`UNKNOWN-ATTRIBUTES of odd length ${b.length}`);
    const out: number[] = [];
    for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16BE(i));
    return out;
  },
);

function encodeAlgorithm(v: PasswordAlgorithmValue): Buffer {
  if (v.parameters.length > 0xffff) throw stunInvalid('password algorithm parameters too long');
  const pad = (4 - (v.parameters.length % 4)) % 4;
  const b = Buffer.alloc(4 + v.parameters.length + pad);
  b.writeUInt16BE(v.algorithm, 0);
  b.writeUInt16BE(v.parameters.length, 2);
  b.set(v.parameters, 4);
  return b;
}

/** Reads algorithms as RFC 8489 §14.11 lays them out (parameters padded to 4 inside the list). */
function decodeAlgorithms(b: Buffer, name: string): PasswordAlgorithmValue[] {
  const out: PasswordAlgorithmValue[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 4 > b.length) throw stunInvalid(`${name} is truncated`);
    const algorithm = b.readUInt16BE(off);
    const len = b.readUInt16BE(off + 2);
    const end = off + 4 + len;
    if (end > b.length) throw stunInvalid(`${name} parameters overrun the attribute`);
    out.push({ algorithm, parameters: b.subarray(off + 4, end) });
    off = end + ((4 - (len % 4)) % 4);
  }
  return out;
}

export const PasswordAlgorithmAttr = codec<PasswordAlgorithmValue>(
  StunAttr.PasswordAlgorithm,
  'PASSWORD-ALGORITHM',
  (v) => encodeAlgorithm(v),
  (b) => {
    const list = decodeAlgorithms(b, 'PASSWORD-ALGORITHM');
    if (list.length !== 1) throw stunInvalid(`PASSWORD-ALGORITHM holds ${list.length} algorithms`);
    return list[0]!;
  },
);

export const PasswordAlgorithms = codec<readonly PasswordAlgorithmValue[]>(
  StunAttr.PasswordAlgorithms,
  'PASSWORD-ALGORITHMS',
  (v) => Buffer.concat(v.map(encodeAlgorithm)),
  (b) => decodeAlgorithms(b, 'PASSWORD-ALGORITHMS'),
);

// ICE (RFC 8445 §16.1).
export const Priority = u32(StunAttr.Priority, 'PRIORITY');
export const UseCandidate = flag(StunAttr.UseCandidate, 'USE-CANDIDATE');
export const IceControlled = u64(StunAttr.IceControlled, 'ICE-CONTROLLED');
export const IceControlling = u64(StunAttr.IceControlling, 'ICE-CONTROLLING');

// TURN (RFC 8656 §18).
export const ChannelNumber = codec<number>(
  StunAttr.ChannelNumber,
  'CHANNEL-NUMBER',
  (v) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw stunInvalid(`channel number ${v} is out of range`);
    const b = Buffer.alloc(4);
    b.writeUInt16BE(v, 0);
    return b;
  },
  (b) => (fixed('CHANNEL-NUMBER', b, 4), b.readUInt16BE(0)),
);
export const Lifetime = u32(StunAttr.Lifetime, 'LIFETIME');
export const XorPeerAddress = xorAddress(StunAttr.XorPeerAddress, 'XOR-PEER-ADDRESS');
export const XorRelayedAddress = xorAddress(StunAttr.XorRelayedAddress, 'XOR-RELAYED-ADDRESS');
export const Data = opaque(StunAttr.Data, 'DATA');
export const DontFragment = flag(StunAttr.DontFragment, 'DONT-FRAGMENT');
export const ReservationToken = opaque(StunAttr.ReservationToken, 'RESERVATION-TOKEN', 8);

/** REQUESTED-TRANSPORT: the IP protocol number (17 = UDP) and three RFFU bytes. */
export const RequestedTransport = codec<number>(
  StunAttr.RequestedTransport,
  'REQUESTED-TRANSPORT',
  (v) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw stunInvalid(`protocol ${v} is out of range`);
    return Buffer.from([v, 0, 0, 0]);
  },
  (b) => (fixed('REQUESTED-TRANSPORT', b, 4), b[0]!),
);

export const RequestedAddressFamily = codec<4 | 6>(
  StunAttr.RequestedAddressFamily,
  'REQUESTED-ADDRESS-FAMILY',
  (v) => Buffer.from([v === 4 ? 0x01 : 0x02, 0, 0, 0]),
  (b) => {
    fixed('REQUESTED-ADDRESS-FAMILY', b, 4);
    if (b[0] === 0x01) return 4;
    if (b[0] === 0x02) return 6;
    throw stunInvalid(`REQUESTED-ADDRESS-FAMILY 0x${b[0]!.toString(16)} is unknown`);
  },
);

/** EVEN-PORT: one byte whose top bit R asks the server to reserve the next port too. */
export const EvenPort = codec<{ readonly reserveNext: boolean }>(
  StunAttr.EvenPort,
  'EVEN-PORT',
  (v) => Buffer.from([v.reserveNext ? 0x80 : 0]),
  (b) => (fixed('EVEN-PORT', b, 1), { reserveNext: (b[0]! & 0x80) !== 0 }),
);

/** Every codec above, by attribute type: the message decoder checks known values with these. */
export const ATTRIBUTE_CODECS: ReadonlyMap<number, AttributeCodec<unknown>> = new Map(
  [
    MappedAddress, XorMappedAddress, AlternateServer, Username, Userhash, Realm, Nonce, Software,
    AlternateDomain, ErrorCode, UnknownAttributes, PasswordAlgorithmAttr, PasswordAlgorithms, Priority,
    UseCandidate, IceControlled, IceControlling, ChannelNumber, Lifetime, XorPeerAddress,
    XorRelayedAddress, Data, DontFragment, ReservationToken, RequestedTransport, RequestedAddressFamily,
    EvenPort,
  ].map((c) => [c.type, c as AttributeCodec<unknown>]),
);

/** The size an XOR-MAPPED-ADDRESS attribute adds to a message, header included: 12 or 24 bytes. */
export function xorAddressAttributeBytes(family: 4 | 6): number {
  return 4 + addressValueBytes(family);
}
