import { DataRecordType, DATA_RECORD_OVERHEAD_BYTES, openRecord, readRecordHeader, sealRecord } from './data-record.js';

/**
 * READY (docs/tunnel-protocol.md, "Data connections"): the agent's first record on a data
 * connection the gateway named in a STREAM_OPEN, written once its local dial succeeded, before any
 * stream byte (agent->gateway key, the sequence after the hello's: 1). Until the gateway has read
 * it, nothing of the public client is committed to the connection, so a connection that died while
 * idle (a NAT that lost its mapping) costs a fallback to a multiplexed stream, not the stream.
 */

export const DATA_READY_BYTES = DATA_RECORD_OVERHEAD_BYTES;

/** READY sealed under `key`/`iv` at sequence `seq`. */
export function encodeDataReady(key: Buffer, iv: Buffer, seq: number): Buffer {
  return sealRecord(key, iv, seq, DataRecordType.ready);
}

/** True when `buf` (DATA_READY_BYTES) is a READY that opens under `key`/`iv` at sequence `seq`. */
export function verifyDataReady(buf: Buffer, key: Buffer, iv: Buffer, seq: number): boolean {
  if (buf.length !== DATA_READY_BYTES) return false;
  try {
    if (readRecordHeader(buf, 0).type !== DataRecordType.ready) return false;
    openRecord(key, iv, seq, buf, 0, 0);
    return true;
  } catch {
    return false;
  }
}
