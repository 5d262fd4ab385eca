import { DATA_TOKEN_BYTES, MAX_DATA_COUNTER } from './data-keys.js';
import { DataRecordType, DATA_RECORD_OVERHEAD_BYTES, openRecord, readRecordHeader, sealRecord, SealedRecordError } from './data-record.js';

/**
 * The first 48 bytes an agent writes on a data connection (docs/tunnel-protocol.md, "Data
 * connections"); the gateway answers nothing:
 *
 *   "SLD1" | 16-byte token | u64 BE counter | HELLO record (agent->gateway key, sequence 0)
 *
 * 0x53 is never a TLS record type, so one port tells it from a control connection (0x16).
 */

export const DATA_HELLO_MAGIC = Buffer.from('SLD1', 'latin1');
export const DATA_HELLO_FIRST_BYTE = 0x53;
export const DATA_HELLO_BYTES = 4 + DATA_TOKEN_BYTES + 8 + DATA_RECORD_OVERHEAD_BYTES;

/** The hello of data connection `counter`, sealed under the agent's key (DataKeys.sealKey/sealIv). */
export function encodeDataHello(token: Buffer, counter: number, key: Buffer, iv: Buffer): Buffer {
  if (token.length !== DATA_TOKEN_BYTES) throw new RangeError(`a data token is ${DATA_TOKEN_BYTES} bytes`);
  const out = Buffer.allocUnsafe(DATA_HELLO_BYTES);
  DATA_HELLO_MAGIC.copy(out, 0);
  token.copy(out, 4);
  out.writeBigUInt64BE(BigInt(counter), 4 + DATA_TOKEN_BYTES);
  sealRecord(key, iv, 0, DataRecordType.hello).copy(out, 28);
  return out;
}

export interface DataHello {
  readonly token: Buffer;
  readonly counter: number;
  /** The whole hello, for `verifyDataHello` once the keys of `counter` are known. */
  readonly bytes: Buffer;
}

/** The unauthenticated fields of 48 hello bytes; SealedRecordError ESEALED_FORMAT when they are not a hello. */
export function readDataHello(buf: Buffer): DataHello {
  if (buf.length !== DATA_HELLO_BYTES || !buf.subarray(0, 4).equals(DATA_HELLO_MAGIC)) throw new SealedRecordError('ESEALED_FORMAT', 'not a data connection hello');
  const counter = buf.readBigUInt64BE(4 + DATA_TOKEN_BYTES);
  if (counter > BigInt(MAX_DATA_COUNTER)) throw new SealedRecordError('ESEALED_FORMAT', `data connection counter ${counter} is out of range`);
  const h = readRecordHeader(buf, 28);
  if (h.type !== DataRecordType.hello) throw new SealedRecordError('ESEALED_FORMAT', `a hello's record has type ${h.type}`);
  return { token: buf.subarray(4, 4 + DATA_TOKEN_BYTES), counter: Number(counter), bytes: buf };
}

/** True when the hello's record opens under the agent->gateway key of its counter (sequence 0). */
export function verifyDataHello(hello: DataHello, key: Buffer, iv: Buffer): boolean {
  try {
    openRecord(key, iv, 0, hello.bytes, 28, 0);
    return true;
  } catch {
    return false;
  }
}
