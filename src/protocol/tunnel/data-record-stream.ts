import {
  DataRecordType, DATA_RECORD_OVERHEAD_BYTES, DATA_RECORD_HEADER_BYTES, MAX_BYTES_PER_KEY, MAX_DATA_RECORD_BYTES, MAX_RECORDS_PER_KEY,
  nextDataKey, openRecord, readRecordHeader, sealRecord, SealedRecordError,
} from './data-record.js';

/**
 * One direction of a data connection as a sequence of records (data-record.ts): the sealer counts
 * sequence numbers and bytes and sends KEY_UPDATE before a key's limits; the reader reassembles
 * records from a byte stream, opens them in order, follows KEY_UPDATE and refuses anything after
 * END. Pure: no sockets; errors are SealedRecordError (ESEALED_AUTH, ESEALED_FORMAT).
 */
export class RecordSealer {
  #key: Buffer;
  #iv: Buffer;
  #seq: number;
  #bytes = 0;

  constructor(key: Buffer, iv: Buffer, seq: number) {
    this.#key = key;
    this.#iv = iv;
    this.#seq = seq;
  }

  /** Records carrying `plain` (split at 64 KiB), with a KEY_UPDATE first where a key's limit is near. */
  data(plain: Buffer, out: Buffer[] = []): Buffer[] {
    for (let at = 0; at < plain.length; at += MAX_DATA_RECORD_BYTES) {
      const part = plain.subarray(at, Math.min(plain.length, at + MAX_DATA_RECORD_BYTES));
      this.#due(part.length, out);
      out.push(this.#seal(DataRecordType.data, part));
      this.#bytes += part.length;
    }
    return out;
  }

  /** The END record. */
  end(): Buffer {
    const out: Buffer[] = [];
    this.#due(0, out);
    out.push(this.#seal(DataRecordType.end));
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** A KEY_UPDATE into `out` (and the next key) when `n` more bytes or two more records would pass a limit. */
  #due(n: number, out: Buffer[]): void {
    // One record is kept for the KEY_UPDATE itself.
    if (this.#seq + 2 <= MAX_RECORDS_PER_KEY && this.#bytes + n <= MAX_BYTES_PER_KEY) return;
    out.push(this.#seal(DataRecordType.keyUpdate));
    const next = nextDataKey(this.#key, this.#iv);
    this.#key = next.key;
    this.#iv = next.iv;
    this.#seq = 0;
    this.#bytes = 0;
  }

  #seal(type: 1 | 2 | 4, plain?: Buffer): Buffer {
    return sealRecord(this.#key, this.#iv, this.#seq++, type, plain);
  }

  /** For tests: pretend this many records were sealed under the current key. */
  skipTo(seq: number, bytes = 0): void {
    this.#seq = seq;
    this.#bytes = bytes;
  }
}

export type RecordEvent = { readonly kind: 'data'; readonly data: Buffer } | { readonly kind: 'end' };

export class RecordReader {
  #key: Buffer;
  #iv: Buffer;
  #seq: number;
  /** Bytes of an incomplete record (views of the pushed chunks, joined once the record is whole). */
  readonly #parts: Buffer[] = [];
  #have = 0;
  /** Bytes the incomplete record needs in all, once its header is in (0 before). */
  #need = 0;
  #ended = false;
  /** With `keepAfterEnd`: bytes pushed after END (the next hello on a reused connection), unread. */
  readonly #rest: Buffer[] = [];

  /**
   * `keepAfterEnd`: bytes after END are not a format error but kept, unopened, for `takeRest` (a
   * data connection that carries another stream after this one).
   */
  constructor(key: Buffer, iv: Buffer, seq: number, private readonly keepAfterEnd = false) {
    this.#key = key;
    this.#iv = iv;
    this.#seq = seq;
  }

  /** The bytes pushed after END (keepAfterEnd), and forgets them. */
  takeRest(): Buffer | undefined {
    if (this.#rest.length === 0) return undefined;
    const rest = Buffer.concat(this.#rest.splice(0));
    return rest;
  }

  /** END was read. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes of a record not complete yet (a FIN now is a truncation). */
  get partial(): number {
    return this.#have;
  }

  /** The records completed by `chunk`, opened; throws SealedRecordError. Keeps views of `chunk` (never reused by sockets). */
  push(chunk: Buffer, out: RecordEvent[] = []): RecordEvent[] {
    if (this.#ended && this.keepAfterEnd) {
      if (chunk.length > 0) this.#rest.push(chunk);
      return out;
    }
    if (this.#have > 0) {
      this.#parts.push(chunk);
      this.#have += chunk.length;
      if (this.#need === 0 && this.#have >= DATA_RECORD_HEADER_BYTES) {
        const head = Buffer.concat(this.#parts, DATA_RECORD_HEADER_BYTES);
        this.#need = DATA_RECORD_OVERHEAD_BYTES + readRecordHeader(head, 0).length;
      }
      if (this.#need === 0 || this.#have < this.#need) return out;
      chunk = Buffer.concat(this.#parts, this.#have);
      this.#parts.length = 0;
      this.#have = 0;
      this.#need = 0;
    }
    let at = 0;
    while (chunk.length - at >= DATA_RECORD_HEADER_BYTES) {
      if (this.#ended && this.keepAfterEnd) break;
      if (this.#ended) throw new SealedRecordError('ESEALED_FORMAT', 'bytes after END');
      const h = readRecordHeader(chunk, at);
      const size = DATA_RECORD_OVERHEAD_BYTES + h.length;
      if (chunk.length - at < size) {
        this.#need = size;
        break;
      }
      if (h.type === DataRecordType.hello) throw new SealedRecordError('ESEALED_FORMAT', 'HELLO after the hello');
      if (h.type === DataRecordType.ready) throw new SealedRecordError('ESEALED_FORMAT', 'READY inside a stream');
      const plain = openRecord(this.#key, this.#iv, this.#seq++, chunk, at, h.length);
      at += size;
      if (h.type === DataRecordType.data) out.push({ kind: 'data', data: plain });
      else if (h.type === DataRecordType.end) {
        this.#ended = true;
        out.push({ kind: 'end' });
      } else {
        const next = nextDataKey(this.#key, this.#iv);
        this.#key = next.key;
        this.#iv = next.iv;
        this.#seq = 0;
      }
      if (this.#seq > MAX_RECORDS_PER_KEY) throw new SealedRecordError('ESEALED_FORMAT', 'too many records under one key');
    }
    if (at < chunk.length && this.#ended && this.keepAfterEnd) {
      this.#rest.push(chunk.subarray(at));
    } else if (at < chunk.length) {
      if (this.#ended) throw new SealedRecordError('ESEALED_FORMAT', 'bytes after END');
      this.#parts.push(chunk.subarray(at));
      this.#have = chunk.length - at;
    }
    return out;
  }
}
