import { randomBytes } from 'node:crypto';
import { SluiceError } from '../../core/errors.js';
import { HEADER_BYTES, MAGIC_COOKIE, TRANSACTION_ID_BYTES, type StunClass } from './constants.js';

/** The fixed 20-byte header (RFC 8489 §5). `length` counts attribute bytes only. */
export interface StunHeader {
  readonly cls: StunClass;
  readonly method: number;
  /** Attribute bytes after the header; always a multiple of 4 in a well-formed message. */
  readonly length: number;
  /** 12 bytes; a view into the input when decoded. */
  readonly transactionId: Buffer;
}

/** The typed error every STUN decoder throws for malformed input. */
export function stunInvalid(message: string): SluiceError {
  return new SluiceError('SLUICE_ERR_STUN_INVALID', `STUN: ${message}`);
}

const CLASS_BITS: Record<StunClass, number> = { request: 0x000, indication: 0x010, success: 0x100, error: 0x110 };
const CLASS_BY_BITS: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

/** Message type from method and class: M11..M0 interleaved with C1 (bit 8) and C0 (bit 4). */
export function encodeMessageType(cls: StunClass, method: number): number {
  if (!Number.isInteger(method) || method < 0 || method > 0xfff) throw stunInvalid(`method ${method} is out of range`);
  return ((method & 0xf80) << 2) | ((method & 0x070) << 1) | (method & 0x00f) | CLASS_BITS[cls];
}

export function decodeMessageType(type: number): { cls: StunClass; method: number } {
  const cls = CLASS_BY_BITS[((type >> 7) & 0x2) | ((type >> 4) & 0x1)]!;
  const method = ((type & 0x3e00) >> 2) | ((type & 0x00e0) >> 1) | (type & 0x000f);
  return { cls, method };
}

/**
 * Reads the header. `mismatch` means "not STUN" (top two bits set, or no magic cookie, which also
 * excludes RFC 3489 messages). Methods up to 0xfff put up to 0x3e in the first byte; only the
 * demultiplexer narrows that to 0-3 (demux.ts). `need-more` means fewer than 20 bytes. The length is not checked
 * against the buffer here; framing is the caller's business.
 */
export function decodeStunHeader(
  buf: Uint8Array,
): { kind: 'need-more' } | { kind: 'mismatch' } | { kind: 'ok'; value: StunHeader } {
  if (buf.length >= 1 && (buf[0]! & 0xc0) !== 0) return { kind: 'mismatch' };
  if (buf.length < HEADER_BYTES) return { kind: 'need-more' };
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.readUInt32BE(4) !== MAGIC_COOKIE) return { kind: 'mismatch' };
  const { cls, method } = decodeMessageType(b.readUInt16BE(0));
  const value = { cls, method, length: b.readUInt16BE(2), transactionId: b.subarray(8, HEADER_BYTES) };
  return { kind: 'ok', value };
}

export function writeStunHeader(out: Buffer, cls: StunClass, method: number, length: number, transactionId: Uint8Array): void {
  if (transactionId.length !== TRANSACTION_ID_BYTES) throw stunInvalid(`transaction id must be 12 bytes, got ${transactionId.length}`);
  out.writeUInt16BE(encodeMessageType(cls, method), 0);
  out.writeUInt16BE(length, 2);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  out.set(transactionId, 8);
}

/** 96 random bits from the CSPRNG (RFC 8489 §5: uniformly and randomly chosen). */
export function randomTransactionId(): Buffer {
  return randomBytes(TRANSACTION_ID_BYTES);
}
