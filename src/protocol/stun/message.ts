import { ATTRIBUTE_CODECS, type AttributeCodec } from './attributes.js';
import { HEADER_BYTES, KNOWN_ATTRIBUTES, StunAttr, isComprehensionRequired, type StunClass } from './constants.js';
import { fingerprintOf } from './fingerprint.js';
import { decodeStunHeader, stunInvalid, writeStunHeader } from './header.js';
import { computeIntegrity, type IntegrityAlgorithm } from './integrity-mac.js';

/**
 * STUN messages (RFC 8489 §5, §14): decoding from and encoding to bytes. Pure functions: no
 * sockets, no clocks. MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT never appear
 * in `attributes`; the decoder reports them in their own fields and the encoder adds them from
 * `EncodeOptions`, so `decode(encode(m, opts))` gives back `m.attributes` unchanged.
 */

export interface StunAttribute {
  readonly type: number;
  /** The value without padding; a view into the input when decoded. */
  readonly value: Buffer;
}

export interface StunMessage {
  readonly cls: StunClass;
  readonly method: number;
  /** 12 bytes. */
  readonly transactionId: Buffer;
  readonly attributes: readonly StunAttribute[];
}

export interface IntegrityField {
  /** Offset of the attribute's 4-byte header inside `raw`. */
  readonly offset: number;
  readonly value: Buffer;
}

export interface DecodedStunMessage extends StunMessage {
  /** Exactly this message's bytes (header and attributes); a view into the input. */
  readonly raw: Buffer;
  readonly messageIntegrity: IntegrityField | undefined;
  readonly messageIntegritySha256: IntegrityField | undefined;
  /** 'invalid' means the bytes are damaged or not STUN; receivers drop such messages silently. */
  readonly fingerprint: 'absent' | 'valid' | 'invalid';
  /**
   * Comprehension-required types (0x0000-0x7FFF) this codec does not know, in order of
   * appearance, without duplicates. A server answers a request carrying any with 420.
   */
  readonly unknownAttributes: readonly number[];
}

/** Result of decoding from a byte stream: `mismatch` means "not STUN". */
export type StunDecoded =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'mismatch' }
  | { readonly kind: 'ok'; readonly value: DecodedStunMessage; readonly length: number };

const INTEGRITY_ATTRIBUTES: ReadonlySet<number> = new Set([StunAttr.MessageIntegrity, StunAttr.MessageIntegritySha256, StunAttr.Fingerprint]);

/**
 * Decodes the message at the start of `buf` (stream framing: the message may be followed by
 * more bytes). Throws SluiceError('SLUICE_ERR_STUN_INVALID') when the header says STUN but the
 * rest is malformed: a length that is not a multiple of 4, attributes that overrun, a known
 * attribute with an impossible value, anything after FINGERPRINT.
 */
export function decodeStunMessage(buf: Buffer): StunDecoded {
  const h = decodeStunHeader(buf);
  if (h.kind !== 'ok') return h;
  const { length } = h.value;
  if (length % 4 !== 0) throw stunInvalid(`message length ${length} is not a multiple of 4`);
  const total = HEADER_BYTES + length;
  if (buf.length < total) return { kind: 'need-more' };
  return { kind: 'ok', value: parseBody(buf.subarray(0, total), h.value.cls, h.value.method, h.value.transactionId), length: total };
}

/**
 * Decodes one whole UDP datagram. Returns undefined when it is not STUN (empty, first byte
 * above 3, or no magic cookie). Throws the typed error when it claims to be STUN but is
 * malformed, truncated, or longer than its length field says.
 */
export function decodeStunDatagram(buf: Buffer): DecodedStunMessage | undefined {
  if (buf.length === 0) return undefined;
  const r = decodeStunMessage(buf);
  if (r.kind === 'mismatch') return undefined;
  if (r.kind === 'need-more') throw stunInvalid(`datagram of ${buf.length} bytes is shorter than its STUN header says`);
  if (r.length !== buf.length) throw stunInvalid(`${buf.length - r.length} bytes follow the STUN message in the datagram`);
  return r.value;
}

function parseBody(raw: Buffer, cls: StunClass, method: number, transactionId: Buffer): DecodedStunMessage {
  const attributes: StunAttribute[] = [];
  const unknown: number[] = [];
  let mi: IntegrityField | undefined;
  let mi256: IntegrityField | undefined;
  let fpOffset = -1;
  let off = HEADER_BYTES;
  while (off < raw.length) {
    if (fpOffset >= 0) throw stunInvalid('attributes follow FINGERPRINT');
    if (off + 4 > raw.length) throw stunInvalid('attribute header is truncated');
    const type = raw.readUInt16BE(off);
    const len = raw.readUInt16BE(off + 2);
    const end = off + 4 + len;
    const next = end + ((4 - (len % 4)) % 4);
    if (next > raw.length) throw stunInvalid(`attribute 0x${type.toString(16).padStart(4, '0')} overruns the message`);
    const value = raw.subarray(off + 4, end);
    if (type === StunAttr.Fingerprint) {
      if (len !== 4) throw stunInvalid(`FINGERPRINT must be 4 bytes, got ${len}`);
      fpOffset = off;
    } else if (type === StunAttr.MessageIntegrity) {
      if (!mi && !mi256) {
        if (len !== 20) throw stunInvalid(`MESSAGE-INTEGRITY must be 20 bytes, got ${len}`);
        mi = { offset: off, value };
      }
    } else if (type === StunAttr.MessageIntegritySha256) {
      if (!mi256) {
        if (len < 16 || len > 32 || len % 4 !== 0) throw stunInvalid(`MESSAGE-INTEGRITY-SHA256 of ${len} bytes`);
        mi256 = { offset: off, value };
      }
    } else if (!mi && !mi256) {
      // RFC 8489 §14.5: everything after MESSAGE-INTEGRITY except MI-SHA256 and FINGERPRINT is ignored.
      ATTRIBUTE_CODECS.get(type)?.decode(value, transactionId);
      if (!KNOWN_ATTRIBUTES.has(type) && isComprehensionRequired(type) && !unknown.includes(type)) unknown.push(type);
      attributes.push({ type, value });
    }
    off = next;
  }
  let fingerprint: DecodedStunMessage['fingerprint'] = 'absent';
  if (fpOffset >= 0) fingerprint = fingerprintOf(raw.subarray(0, fpOffset)) === raw.readUInt32BE(fpOffset + 4) ? 'valid' : 'invalid';
  return {
    cls, method, transactionId, attributes, raw,
    messageIntegrity: mi, messageIntegritySha256: mi256, fingerprint, unknownAttributes: unknown,
  };
}

export interface EncodeOptions {
  /** Key for MESSAGE-INTEGRITY(-SHA256); see credentials.ts. Without it no integrity is added. */
  readonly integrityKey?: Uint8Array;
  /** Which integrity attribute(s) to add; 'both' writes MI then MI-SHA256. Default 'sha1'. */
  readonly integrity?: IntegrityAlgorithm | 'both';
  /** Adds FINGERPRINT last. */
  readonly fingerprint?: boolean;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** Bytes `encodeStunMessage` will produce, so callers can check budgets before encoding. */
export function encodedStunLength(msg: StunMessage, opts: EncodeOptions = {}): number {
  let n = HEADER_BYTES;
  for (const a of msg.attributes) n += 4 + pad4(a.value.length);
  if (opts.integrityKey) {
    const alg = opts.integrity ?? 'sha1';
    if (alg !== 'sha256') n += 24;
    if (alg !== 'sha1') n += 36;
  }
  if (opts.fingerprint) n += 8;
  return n;
}

/**
 * Encodes a message: attributes in order with zero padding, then the requested integrity
 * attributes and FINGERPRINT, each computed over the header with the length the RFC prescribes.
 */
export function encodeStunMessage(msg: StunMessage, opts: EncodeOptions = {}): Buffer {
  const total = encodedStunLength(msg, opts);
  if (total - HEADER_BYTES > 0xffff) throw stunInvalid(`message of ${total} bytes is too long`);
  const out = Buffer.alloc(total);
  writeStunHeader(out, msg.cls, msg.method, total - HEADER_BYTES, msg.transactionId);
  let off = HEADER_BYTES;
  for (const a of msg.attributes) {
    if (INTEGRITY_ATTRIBUTES.has(a.type)) throw stunInvalid('integrity and fingerprint attributes come from EncodeOptions');
    if (!Number.isInteger(a.type) || a.type < 0 || a.type > 0xffff) throw stunInvalid(`attribute type ${a.type} is out of range`);
    off = writeAttribute(out, off, a.type, a.value);
  }
  if (opts.integrityKey) {
    const alg = opts.integrity ?? 'sha1';
    if (alg !== 'sha256') off = writeAttribute(out, off, StunAttr.MessageIntegrity, computeIntegrity('sha1', opts.integrityKey, out, off, 20));
    if (alg !== 'sha1') off = writeAttribute(out, off, StunAttr.MessageIntegritySha256, computeIntegrity('sha256', opts.integrityKey, out, off, 32));
  }
  if (opts.fingerprint) {
    const fp = Buffer.alloc(4);
    fp.writeUInt32BE(fingerprintOf(out.subarray(0, off)));
    writeAttribute(out, off, StunAttr.Fingerprint, fp);
  }
  return out;
}

function writeAttribute(out: Buffer, off: number, type: number, value: Uint8Array): number {
  if (value.length > 0xffff) throw stunInvalid(`attribute value of ${value.length} bytes is too long`);
  out.writeUInt16BE(type, off);
  out.writeUInt16BE(value.length, off + 2);
  out.set(value, off + 4);
  return off + 4 + pad4(value.length);
}

/** A typed attribute waiting for the message's transaction id (XOR addresses need it). */
export interface AttributeEntry<T = unknown> {
  readonly codec: AttributeCodec<T>;
  readonly value: T;
}

export function attr<T>(codec: AttributeCodec<T>, value: T): AttributeEntry<T> {
  return { codec, value };
}

/** Builds a message from typed entries (`attr(XorMappedAddress, ep)`) and/or raw attributes. */
export function stunMessage(
  cls: StunClass,
  method: number,
  transactionId: Buffer,
  attributes: readonly (AttributeEntry | StunAttribute)[] = [],
): StunMessage {
  const list = attributes.map((a): StunAttribute =>
    'codec' in a ? { type: a.codec.type, value: a.codec.encode(a.value, transactionId) } : a,
  );
  return { cls, method, transactionId, attributes: list };
}

/** The first attribute of `codec`'s type, decoded, or undefined. Throws the typed error if malformed. */
export function getAttribute<T>(msg: StunMessage, codec: AttributeCodec<T>): T | undefined {
  const a = msg.attributes.find((x) => x.type === codec.type);
  return a ? codec.decode(a.value, msg.transactionId) : undefined;
}

/** Every attribute of `codec`'s type, decoded (CreatePermission may carry several XOR-PEER-ADDRESS). */
export function getAttributes<T>(msg: StunMessage, codec: AttributeCodec<T>): T[] {
  return msg.attributes.filter((x) => x.type === codec.type).map((x) => codec.decode(x.value, msg.transactionId));
}

export function hasAttribute(msg: StunMessage, type: number): boolean {
  return msg.attributes.some((x) => x.type === type);
}
