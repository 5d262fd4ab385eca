import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

/**
 * Records of a sealed data connection (docs/tunnel-protocol.md, "Data connections"): each
 * direction is a sequence of
 *
 *   u8 type | u24 length (plaintext bytes) | ciphertext (length bytes) | 16-byte tag
 *
 * sealed with AES-128-GCM under the direction's key; nonce = iv XOR (4 zero bytes | u64 sequence),
 * as TLS 1.3 (RFC 8446 5.3); AAD = the 4-byte header. Pure functions over Buffer: the relays
 * (data-record-stream.ts, the native engine) keep the sequence numbers.
 */

export const DataRecordType = {
  data: 1,
  end: 2,
  hello: 3,
  keyUpdate: 4,
  ready: 5,
} as const;
export type DataRecordTypeByte = (typeof DataRecordType)[keyof typeof DataRecordType];

export const DATA_RECORD_HEADER_BYTES = 4;
export const DATA_RECORD_TAG_BYTES = 16;
export const DATA_RECORD_OVERHEAD_BYTES = DATA_RECORD_HEADER_BYTES + DATA_RECORD_TAG_BYTES;
/** Largest DATA plaintext; a receiver refuses 0 or more. */
export const MAX_DATA_RECORD_BYTES = 65_536;
export const DATA_KEY_BYTES = 16;
export const DATA_IV_BYTES = 12;
/** Under one key a sealer sends KEY_UPDATE before this many records or plaintext bytes (RFC 8446 5.5, with margin). */
export const MAX_RECORDS_PER_KEY = 2 ** 24;
export const MAX_BYTES_PER_KEY = 2 ** 36;
const KEY_UPDATE_INFO = Buffer.from('sluice data key update', 'latin1');

/** Why a sealed data connection was refused: the codes a joined pair's end carries (PairEnd.code). */
export type SealedErrorCode = 'ESEALED_AUTH' | 'ESEALED_FORMAT' | 'ESEALED_TRUNCATED';

export class SealedRecordError extends Error {
  override name = 'SealedRecordError';
  constructor(
    readonly code: SealedErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** nonce = iv XOR (0 0 0 0 | u64 BE seq); `seq` is below 2^53 (it never passes 2^24 under one key). */
export function recordNonce(iv: Buffer, seq: number, out: Buffer = Buffer.allocUnsafe(DATA_IV_BYTES)): Buffer {
  iv.copy(out, 0, 0, DATA_IV_BYTES);
  const hi = Math.floor(seq / 0x1_0000_0000);
  const lo = seq >>> 0;
  out.writeUInt32BE((out.readUInt32BE(4) ^ hi) >>> 0, 4);
  out.writeUInt32BE((out.readUInt32BE(8) ^ lo) >>> 0, 8);
  return out;
}

/** One whole record: header, ciphertext and tag, in a new Buffer. */
export function sealRecord(key: Buffer, iv: Buffer, seq: number, type: DataRecordTypeByte, plaintext?: Buffer): Buffer {
  const n = plaintext?.length ?? 0;
  if (type === DataRecordType.data ? n < 1 || n > MAX_DATA_RECORD_BYTES : n !== 0) {
    throw new RangeError(`a record of type ${type} cannot carry ${n} bytes`);
  }
  const out = Buffer.allocUnsafe(DATA_RECORD_OVERHEAD_BYTES + n);
  out[0] = type;
  out.writeUIntBE(n, 1, 3);
  const c = createCipheriv('aes-128-gcm', key, recordNonce(iv, seq));
  c.setAAD(out.subarray(0, DATA_RECORD_HEADER_BYTES));
  let at = DATA_RECORD_HEADER_BYTES;
  if (n > 0) at += c.update(plaintext!).copy(out, at);
  at += c.final().copy(out, at);
  c.getAuthTag().copy(out, at);
  return out;
}

/**
 * The header at `buf[at, at + 4)`: its type and length, checked (SealedRecordError ESEALED_FORMAT
 * for an unknown type, a DATA of 0 or more than 65536 bytes, or a control record with a length).
 */
export function readRecordHeader(buf: Buffer, at: number): { readonly type: DataRecordTypeByte; readonly length: number } {
  const type = buf[at]!;
  const length = buf.readUIntBE(at + 1, 3);
  if (type < DataRecordType.data || type > DataRecordType.ready) throw new SealedRecordError('ESEALED_FORMAT', `record type ${type} is not defined`);
  if (type === DataRecordType.data ? length < 1 || length > MAX_DATA_RECORD_BYTES : length !== 0) {
    throw new SealedRecordError('ESEALED_FORMAT', `a record of type ${type} cannot carry ${length} bytes`);
  }
  return { type: type as DataRecordTypeByte, length };
}

/**
 * Opens the record at `buf[at, at + 20 + length)` whose header was read with readRecordHeader:
 * the plaintext (empty for a control record), or SealedRecordError ESEALED_AUTH.
 */
export function openRecord(key: Buffer, iv: Buffer, seq: number, buf: Buffer, at: number, length: number): Buffer {
  const body = at + DATA_RECORD_HEADER_BYTES;
  const d = createDecipheriv('aes-128-gcm', key, recordNonce(iv, seq));
  d.setAAD(buf.subarray(at, body));
  d.setAuthTag(buf.subarray(body + length, body + length + DATA_RECORD_TAG_BYTES));
  try {
    const plain = length > 0 ? d.update(buf.subarray(body, body + length)) : Buffer.alloc(0);
    d.final();
    return plain;
  } catch {
    throw new SealedRecordError('ESEALED_AUTH', `record ${seq} did not authenticate`);
  }
}

/** KEY_UPDATE: next (key | iv) = HKDF-SHA256(ikm = key | iv, salt = empty, info = "sluice data key update", 28). */
export function nextDataKey(key: Buffer, iv: Buffer): { readonly key: Buffer; readonly iv: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', Buffer.concat([key, iv]), Buffer.alloc(0), KEY_UPDATE_INFO, DATA_KEY_BYTES + DATA_IV_BYTES));
  return { key: okm.subarray(0, DATA_KEY_BYTES), iv: okm.subarray(DATA_KEY_BYTES) };
}
