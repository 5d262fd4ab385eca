import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { EndReason } from '../../observe/events.js';
import type { SocketRelayOutcome, SocketRelaying } from '../dialer.js';
import { relaySocketToStream, type RelayedStream, type StreamSink } from './socket-relay.js';
import { relayConnToStream } from './conn-relay.js';
import type { StreamConn, StreamDatapath } from '../../datapath/stream-datapath.js';
import { SluiceError } from '../../core/errors.js';
import { MAX_STREAM_DATA_BYTES, ReceiveWindow, SendWindow, type StreamResetCode } from '../../protocol/tunnel/index.js';

/**
 * Received data is pushed in chunks of at most this many bytes: the pieces of one socket read
 * (frames split across TLS records, several frames of one read) become one chunk, so the consumer
 * (the socket toward the client or the local service) makes one write for up to four frames.
 */
const MERGED_CHUNK_BYTES = 64 * 1024;

/** What a stream needs from the multiplexer that owns it. */
export interface StreamLink {
  sendData(id: number, data: Buffer): void;
  sendEnd(id: number): void;
  sendReset(id: number, code: StreamResetCode): void;
  sendWindowUpdate(id: number, increment: number): void;
  /** Runs `fn` when the shared connection can take more bytes (connection-level backpressure). */
  whenWritable(fn: () => void): void;
  /** The stream is finished; forget its id. */
  released(id: number): void;
}

/** The error a stream is destroyed with when the peer reset it. */
export class StreamResetError extends SluiceError {
  constructor(readonly resetCode: StreamResetCode) {
    super(resetCode === 'refused' || resetCode === 'dial-failed' || resetCode === 'timeout' ? 'SLUICE_ERR_DIAL_FAILED' : 'SLUICE_ERR_CLOSED', `stream reset by the peer: ${resetCode}`);
  }
}

/**
 * One multiplexed TCP stream of the tunnel as a Duplex (docs/tunnel-protocol.md §5): writes spend
 * the peer's per-stream credit (SendWindow) and wait for WINDOW_UPDATE when it runs out; received
 * data counts against this end's window (ReceiveWindow), whose credit goes back only as the
 * consumer takes bytes out of the readable buffer, so a slow consumer stalls only its own stream.
 *
 * Half-close: `end()` sends STREAM_END (a FIN); the peer's STREAM_END ends the readable side. Both
 * done = finished, quietly. Destroyed before that (by the owner, or an error) = STREAM_RESET
 * `cancel`, unless the peer reset it first. Created with allowHalfOpen, as relayTcp requires.
 */
export class TunnelStream extends Duplex implements SocketRelaying, RelayedStream {
  readonly #link: StreamLink;
  readonly #send: SendWindow;
  readonly #recv: ReceiveWindow;
  #pending: { chunk: Buffer; off: number; cb: (err?: Error | null) => void } | null = null;
  #pushed = 0;
  #released = 0;
  #releaseScheduled = false;
  #remoteEnded = false;
  #localEnded = false;
  #resetByPeer = false;
  /** Received data not yet pushed: the pieces of one socket read, pushed as one chunk (#flushInbox). */
  readonly #inbox: Buffer[] = [];
  #inboxBytes = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** Largest chunk pushed to the consumer; a paced consumer lowers it (session/limited-pipe.ts). */
  maxChunkBytes = MERGED_CHUNK_BYTES;
  /** Set by attachSink: received data bypasses the readable side. */
  #sink: StreamSink | null = null;

  constructor(
    readonly id: number,
    link: StreamLink,
    /** The peer's initial window (what this end may send). */
    sendWindow: number,
    /** This end's initial window (what the peer may send). */
    receiveWindow: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.#link = link;
    this.#send = new SendWindow(sendWindow);
    this.#recv = new ReceiveWindow(receiveWindow);
  }

  // ---- from the multiplexer ----

  /**
   * STREAM_DATA from the peer. Counted against the window now; pushed once the socket read that
   * carried it is done (setImmediate runs after the poll phase), merged up to `maxChunkBytes`.
   */
  onPeerData(data: Buffer): void {
    if (this.#remoteEnded) return this.#fail('protocol');
    if (!this.#recv.receive(data.length)) return this.#fail('flow-control');
    this.bytesRead += data.length;
    if (this.#inbox.length === 0) setImmediate(this.#flushInbox);
    this.#inbox.push(data);
    this.#inboxBytes += data.length;
  }

  onPeerEnd(): void {
    if (this.#remoteEnded) return;
    this.#remoteEnded = true;
    this.#flushInbox();
    if (this.#sink) this.#sink.end();
    else this.push(null);
  }

  /** Pushes the inbox as chunks of at most `maxChunkBytes` (a piece is never cut). */
  readonly #flushInbox = (): void => {
    const inbox = this.#inbox;
    if (inbox.length === 0 || this.destroyed) return;
    const max = this.maxChunkBytes;
    let from = 0;
    let bytes = 0;
    for (let i = 0; i <= inbox.length; i++) {
      const next = i < inbox.length ? inbox[i]!.length : Infinity;
      if (bytes > 0 && bytes + next > max) {
        this.#pushed += bytes;
        const chunk = i - from === 1 ? inbox[from]! : Buffer.concat(inbox.slice(from, i), bytes);
        if (this.#sink) this.#sink.data(chunk);
        else this.push(chunk);
        from = i;
        bytes = 0;
      }
      bytes += next;
    }
    inbox.length = 0;
    this.#inboxBytes = 0;
  };

  /** `withError` false: destroyed quietly (the opener was told already: a failed dial). */
  // ---- without Node's stream machinery (socket-relay.ts) ----

  /**
   * From now on received data goes to `sink` (what the readable side holds already is handed to it
   * first), and its credit goes back only through `consumed`. The readable side is not used again.
   */
  attachSink(sink: StreamSink): void {
    this.#sink = sink;
    for (let c = super.read() as Buffer | null; c !== null; c = super.read() as Buffer | null) sink.data(c);
    if (this.#remoteEnded) sink.end();
  }

  /** The sink's consumer took `bytes` (its socket accepted them): the peer may send that much more. */
  consumed(bytes: number): void {
    if (this.destroyed) return;
    this.#released += bytes;
    const inc = this.#recv.release(bytes);
    if (inc > 0) this.#link.sendWindowUpdate(this.id, inc);
  }

  /** Whether `writeDirect` may be used: no write of the writable side is in flight. */
  get idle(): boolean {
    return this.#pending === null && this.#writeDone === null && this.writableLength === 0;
  }

  /** Sends `chunk` as STREAM_DATA within the window; `done` once it is sent and the channel can take more. One at a time. */
  writeDirect(chunk: Buffer, done: () => void): void {
    this.#pending = { chunk, off: 0, cb: done };
    this.#pump();
  }

  /** Sends STREAM_END (the writable side's end, without it). */
  endDirect(): void {
    if (this.#localEnded || this.destroyed) return;
    this.#localEnded = true;
    this.#link.sendEnd(this.id);
  }

  /** SocketRelaying: relays `sock` through socket-relay.ts; undefined while a write of the writable side is in flight. */
  relaySocket(sock: Socket, idleTimeoutMs: number, onDone: (outcome: SocketRelayOutcome) => void): ((reason: EndReason) => void) | undefined {
    return this.idle ? relaySocketToStream(sock, this, idleTimeoutMs, onDone) : undefined;
  }

  /**
   * ConnRelaying: relays a plain connection of `datapath` without a Node socket (conn-relay.ts);
   * undefined when that datapath cannot or a write is in flight (relaySocket or relayTcp then).
   */
  relayConn(down: StreamConn, datapath: StreamDatapath, idleTimeoutMs: number, onDone: (outcome: SocketRelayOutcome) => void): ((reason: EndReason) => void) | undefined {
    return this.idle ? relayConnToStream(down, datapath, this, idleTimeoutMs, onDone) : undefined;
  }

  /** Both directions ended (FIN sent and received). */
  get finished(): boolean {
    return this.#remoteEnded && this.#localEnded;
  }

  onPeerReset(code: StreamResetCode, withError = true): void {
    this.#resetByPeer = true;
    this.destroy(withError ? new StreamResetError(code) : undefined);
  }

  onWindowUpdate(increment: number): void {
    if (!this.#send.grant(increment)) return this.#fail('flow-control');
    this.#pump();
  }

  /** Resets the stream with `code` (a local decision: limit, dial failure). */
  reset(code: StreamResetCode): void {
    if (this.destroyed) return;
    this.#link.sendReset(this.id, code);
    this.#resetByPeer = true; // sent already; _destroy must not send another
    this.destroy();
  }

  // ---- Duplex ----

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#pending = { chunk, off: 0, cb };
    this.#pump();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#localEnded = true;
    this.#link.sendEnd(this.id);
    cb();
  }

  /**
   * Credit goes back when the consumer takes bytes out of the readable buffer. Every way of
   * consuming (flowing mode, pipe, read()) goes through read(), which is hooked here; _read is
   * not enough, because Readable calls it before it removes the chunk and not again until the
   * next push, so the last credit of a window would never go back.
   */
  override read(size?: number): Buffer | null {
    const chunk = super.read(size) as Buffer | null;
    if (chunk !== null) this.#scheduleRelease();
    return chunk;
  }

  override _read(): void {
    this.#scheduleRelease();
  }

  #scheduleRelease(): void {
    if (this.#releaseScheduled) return;
    this.#releaseScheduled = true;
    process.nextTick(() => {
      this.#releaseScheduled = false;
      this.#releaseConsumed();
    });
  }

  #releaseConsumed(): void {
    if (this.destroyed || this.#sink) return;
    const consumed = this.#pushed - this.readableLength - this.#released;
    if (consumed <= 0) return;
    this.#released += consumed;
    const inc = this.#recv.release(consumed);
    if (inc > 0) this.#link.sendWindowUpdate(this.id, inc);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const clean = this.#remoteEnded && this.#localEnded;
    if (!clean && !this.#resetByPeer) this.#link.sendReset(this.id, 'cancel');
    this.#pending = null;
    this.#inbox.length = 0;
    this.#inboxBytes = 0;
    this.#link.released(this.id);
    cb(err);
  }

  #pump(): void {
    const p = this.#pending;
    if (!p || this.destroyed) return;
    while (p.off < p.chunk.length) {
      const n = Math.min(this.#send.available, MAX_STREAM_DATA_BYTES, p.chunk.length - p.off);
      if (n === 0) return; // resumes at the next WINDOW_UPDATE
      this.#send.consume(n);
      this.#link.sendData(this.id, p.chunk.subarray(p.off, p.off + n));
      p.off += n;
      this.bytesWritten += n;
    }
    this.#pending = null;
    this.#writeDone = p.cb;
    this.#link.whenWritable(this.#afterWritable);
  }

  /** The write callback of the chunk just sent, called once the channel can take more. */
  #writeDone: ((err?: Error | null) => void) | null = null;
  readonly #afterWritable = (): void => {
    const cb = this.#writeDone;
    this.#writeDone = null;
    if (cb && !this.destroyed) cb();
  };

  #fail(code: StreamResetCode): void {
    this.reset(code);
  }
}
