import { MAX_FRAME_BYTES } from './constants.js';
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
 * After the first error, the reader is failed: every later `push` throws the same error, because
 * framing is lost and the connection must be closed.
 */
export class ControlFrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #max: number;
  #failed: TunnelError | undefined;

  constructor(opts: { maxFrameBytes?: number } = {}) {
    this.#max = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
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
      throw this.#failed;
    }
  }

  #push(chunk: Buffer): ControlMessage[] {
    const out: ControlMessage[] = [];
    if (chunk.length === 0) return out;
    let buf: Buffer;
    if (this.#buffered === 0) {
      buf = chunk;
    } else {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      const need = this.#frameEnd();
      if (need === undefined || this.#buffered < need) return out;
      buf = Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks = [];
      this.#buffered = 0;
    }
    let pos = 0;
    while (buf.length - pos >= 4) {
      const length = buf.readUInt32BE(pos);
      this.#check(length);
      if (buf.length - pos < 4 + length) break;
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

  /** Byte count of the whole first frame once its length field is complete, else undefined. */
  #frameEnd(): number | undefined {
    if (this.#buffered < 4) return undefined;
    let head = this.#chunks[0]!;
    if (head.length < 4) {
      head = Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks = [head];
    }
    const length = head.readUInt32BE(0);
    this.#check(length);
    return 4 + length;
  }

  #check(length: number): void {
    if (length > this.#max) throw new TunnelError('frame-too-large', `frame of ${length} bytes exceeds ${this.#max}`);
    if (length === 0) throw malformed('frame length 0 has no type byte');
  }
}
