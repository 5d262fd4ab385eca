import { FrameType, MAX_FRAME_BYTES, MAX_STREAM_DATA_BYTES } from './constants.js';
import { decodeFrameBody } from './control-codec.js';
import type { ControlMessage } from './control-messages.js';
import { TunnelError } from './errors.js';
import { malformed } from './wire.js';

/**
 * Turns the chunks of a byte stream (the TLS socket's 'data' events) into control messages.
 * Pure: no socket, no timer. Holds at most one partial frame (4 + maxFrameBytes) plus the chunk
 * being read, and copies a partial frame once when it completes (no O(n^2) re-concatenation when
 * a frame arrives in many small pieces).
 *
 * Buffers inside returned messages stay valid: the reader never writes into memory it has handed
 * out, so they may be kept without copying (they keep the chunk they came from alive).
 *
 * With `splitStreamData`, a STREAM_DATA frame that spans chunks is returned as several
 * STREAM_DATA messages of the same stream, one per piece as its bytes arrive, so its payload is
 * never copied (TLS hands over at most 16 KiB per chunk, so a full frame nearly always spans two).
 * The pieces carry the frame's bytes in order; a receiver that treats STREAM_DATA as a byte stream
 * (flow control counts bytes, not frames) sees the same stream.
 *
 * After the first error, the reader is failed: every later `push` throws the same error, because
 * framing is lost and the connection must be closed.
 */
export class ControlFrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #max: number;
  #failed: TunnelError | undefined;
  readonly #split: boolean;
  /** Payload bytes of a split STREAM_DATA frame still to come, and its stream. */
  #dataLeft = 0;
  #dataStream = 0;

  constructor(opts: { maxFrameBytes?: number; splitStreamData?: boolean } = {}) {
    this.#max = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#split = opts.splitStreamData ?? false;
  }

  /** Raise (or lower) the frame limit, e.g. from PRE_AUTH_MAX_FRAME_BYTES to MAX_FRAME_BYTES after AUTH_OK. */
  set maxFrameBytes(n: number) {
    this.#max = n;
  }
  get maxFrameBytes(): number {
    return this.#max;
  }

  /** Bytes held that do not yet make a whole frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * Feeds one chunk; returns the messages it completes, in order (often none). Throws TunnelError
   * on a malformed or over-long frame. Frames completed before the bad one in the same chunk are
   * lost with it; the connection is going to be closed anyway.
   */
  push(chunk: Buffer): ControlMessage[] {
    if (this.#failed) throw this.#failed;
    try {
      return this.#push(chunk);
    } catch (e) {
      this.#failed = e instanceof TunnelError ? e : malformed(String(e));
      this.#chunks = [];
      this.#buffered = 0;
      this.#dataLeft = 0;
      throw this.#failed;
    }
  }

  #push(chunk: Buffer, out: ControlMessage[] = []): ControlMessage[] {
    if (chunk.length === 0) return out;
    if (this.#dataLeft > 0) {
      const n = Math.min(this.#dataLeft, chunk.length);
      this.#dataLeft -= n;
      out.push({ type: 'stream-data', streamId: this.#dataStream, data: n === chunk.length ? chunk : chunk.subarray(0, n) });
      return n === chunk.length ? out : this.#push(chunk.subarray(n), out);
    }
    let buf: Buffer;
    if (this.#buffered === 0) {
      buf = chunk;
    } else {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      const need = this.#frameEnd();
      if (need === undefined) return out;
      if (this.#split && this.#buffered >= DATA_HEAD_BYTES && this.#splitBuffered(out)) return out;
      if (this.#buffered < need) return out;
      buf = Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks = [];
      this.#buffered = 0;
    }
    let pos = 0;
    while (buf.length - pos >= 4) {
      const length = buf.readUInt32BE(pos);
      this.#check(length);
      if (buf.length - pos < 4 + length) {
        if (this.#split && buf.length - pos >= DATA_HEAD_BYTES && buf[pos + 4] === FrameType.streamData) {
          this.#startData(length, buf.readUInt32BE(pos + 5));
          return this.#push(buf.subarray(pos + DATA_HEAD_BYTES), out);
        }
        break;
      }
      out.push(decodeFrameBody(buf, pos + 4, pos + 4 + length));
      pos += 4 + length;
    }
    if (pos < buf.length) {
      this.#chunks = [buf.subarray(pos)];
      this.#buffered = buf.length - pos;
      // a partial length field spread over chunks is checked as soon as it completes
      if (this.#buffered >= 4) this.#check(buf.readUInt32BE(pos));
    }
    return out;
  }

  /**
   * The buffered chunks start with a STREAM_DATA header: drop the header (copying at most its 9
   * bytes) and hand the rest over as pieces. False (nothing changed) for any other frame type.
   */
  #splitBuffered(out: ControlMessage[]): boolean {
    const head = this.#peek(DATA_HEAD_BYTES);
    if (head[4] !== FrameType.streamData) return false;
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#buffered = 0;
    this.#startData(head.readUInt32BE(0), head.readUInt32BE(5));
    let skip = DATA_HEAD_BYTES;
    for (const c of chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      this.#push(skip === 0 ? c : c.subarray(skip), out);
      skip = 0;
    }
    return true;
  }

  /** A copy of the first `n` buffered bytes (n <= bufferedBytes), for headers split over chunks. */
  #peek(n: number): Buffer {
    const head = Buffer.allocUnsafe(n);
    let got = 0;
    for (const c of this.#chunks) {
      got += c.copy(head, got, 0, Math.min(c.length, n - got));
      if (got === n) break;
    }
    return head;
  }

  /** Checks a STREAM_DATA frame's length and stream id as the codec does, then expects its payload. */
  #startData(length: number, streamId: number): void {
    const n = length - 5;
    if (n < 1 || n > MAX_STREAM_DATA_BYTES) throw malformed(`stream data of ${n} bytes is not in 1-${MAX_STREAM_DATA_BYTES}`);
    if (streamId === 0) throw malformed('stream id 0 is reserved');
    this.#dataStream = streamId;
    this.#dataLeft = n;
  }

  /** Byte count of the whole first frame once its length field is complete, else undefined. */
  #frameEnd(): number | undefined {
    if (this.#buffered < 4) return undefined;
    const first = this.#chunks[0]!;
    const length = (first.length >= 4 ? first : this.#peek(4)).readUInt32BE(0);
    this.#check(length);
    return 4 + length;
  }

  #check(length: number): void {
    if (length > this.#max) throw new TunnelError('frame-too-large', `frame of ${length} bytes exceeds ${this.#max}`);
    if (length === 0) throw malformed('frame length 0 has no type byte');
  }
}

/** Length field, type byte and stream id of a STREAM_DATA frame. */
const DATA_HEAD_BYTES = 9;
