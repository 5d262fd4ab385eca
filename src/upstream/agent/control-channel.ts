import type { Duplex } from 'node:stream';
import type { Clock, Timer } from '../../core/clock.js';
import {
  ControlFrameReader, PRE_AUTH_MAX_FRAME_BYTES, encodeControlMessage, encodeStreamDataHeader, initialPhase, isTunnelError,
  maxFrameBytesFor, receiveTransition, type ControlMessage, type ControlPhase, type RefusalCode, type TunnelRole,
} from '../../protocol/tunnel/index.js';

/** How a control channel ended, for whoever owns it (logged and counted there, once). */
export interface ChannelEnd {
  /** The peer said why (GOAWAY or AUTH_ERROR are both reported here by the owner's handler). */
  readonly goaway?: { readonly code: RefusalCode; readonly message: string };
  /** This end closed it on purpose with this code. */
  readonly sent?: RefusalCode;
  /** A framing or phase error from the peer, or a socket error. */
  readonly error?: Error;
}

/** Bytes queued in the TLS socket above which stream writers wait for 'drain' and fallback datagrams are dropped. */
export const CHANNEL_BACKLOG_BYTES = 256 * 1024;

/** Bytes a control channel collects in one event-loop turn before it writes them anyway. */
const COALESCE_BYTES = 64 * 1024;

/**
 * One end of the tunnel's control connection (docs/tunnel-protocol.md §2, §8) over an established
 * TLS socket: frames in and out, the receive phase, and PING/PONG liveness. Owns the socket and
 * destroys it when it ends. Messages reach `onMessage` in order, after `receiveTransition` accepted
 * them; PING and PONG are answered here and never reach it.
 *
 * Not re-entrant per message: `onMessage` may send and may close the channel, after which no
 * further message of the same chunk is delivered.
 */
export class ControlChannel {
  #phase: ControlPhase;
  readonly #reader = new ControlFrameReader({ maxFrameBytes: PRE_AUTH_MAX_FRAME_BYTES, splitStreamData: true });
  readonly #drainWaiters: (() => void)[] = [];
  #ended: ChannelEnd | undefined;
  #resolveEnded!: (end: ChannelEnd) => void;
  /** Resolves once, when the socket is gone. */
  readonly ended: Promise<ChannelEnd>;
  #ping: Timer | undefined;
  #pingCounter = 0;
  #unanswered = 0;
  #onMessage: (m: ControlMessage) => void = () => {};
  #linger: Timer | undefined;
  /** Frames of this event-loop turn not yet written (see #write), and their bytes. */
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor(
    readonly socket: Duplex,
    readonly role: TunnelRole,
    /** Times keepalives, stream-open deadlines (StreamMux) and the linger before a socket is destroyed. */
    readonly clock: Clock,
  ) {
    this.#phase = initialPhase(role);
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => {
      for (const w of this.#drainWaiters.splice(0)) w();
    });
    socket.on('error', (err) => this.#finish({ error: err }));
    socket.on('end', () => this.#finish({ error: new Error('the peer closed the connection') }));
    socket.on('close', () => {
      this.#linger?.cancel();
      this.#finish({ error: new Error('connection closed') });
    });
  }

  get phase(): ControlPhase {
    return this.#phase;
  }

  get isOpen(): boolean {
    return this.#ended === undefined;
  }

  /** Bytes waiting in the socket, and the frames of this turn not yet handed to it. */
  get backlog(): number {
    return this.socket.writableLength + this.#heldBytes;
  }

  /** Sets the one receiver of messages. */
  onMessage(fn: (m: ControlMessage) => void): void {
    this.#onMessage = fn;
  }

  /** Encodes and writes one message; false when the channel has ended. */
  send(m: ControlMessage): boolean {
    if (this.#ended) return false;
    this.#write(encodeControlMessage(m));
    return true;
  }

  /** STREAM_DATA without copying `data` (1..MAX_STREAM_DATA_BYTES bytes). */
  sendStreamData(streamId: number, data: Buffer): void {
    if (this.#ended) return;
    this.#write(encodeStreamDataHeader(streamId, data.length));
    this.#write(data);
  }

  /**
   * Write coalescing: every frame written in one turn of the event loop (all the socket events
   * of one poll phase: the reads of many streams) is held here and leaves in one write of one
   * buffer when the turn ends (setImmediate runs right after the poll phase), so TLS seals them
   * into as few records and the kernel sees one write instead of one per frame. One buffer, not a
   * corked writev: the TLS socket copies a writev's buffers into one anyway, and one write call
   * costs JavaScript a fraction of one per frame. Frame order is the order of the calls.
   * Backpressure is unchanged: held bytes count in `backlog`.
   */
  #write(buf: Buffer): void {
    if (this.#held.length === 0) setImmediate(this.#flush);
    this.#held.push(buf);
    this.#heldBytes += buf.length;
    // A long turn (a batch of fallback datagrams, many streams) flushes every COALESCE_BYTES, so
    // coalescing never holds more than that back from the kernel nor fills `backlog` by itself.
    if (this.#heldBytes >= COALESCE_BYTES) this.#flush();
  }

  /** Writes the held frames (idempotent; the setImmediate of a flushed turn finds nothing). */
  readonly #flush = (): void => {
    const held = this.#held;
    if (held.length === 0) return;
    const out = held.length === 1 ? held[0]! : Buffer.concat(held, this.#heldBytes);
    this.#held = [];
    this.#heldBytes = 0;
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(out);
  };

  /** Runs `fn` once the socket's backlog is below CHANNEL_BACKLOG_BYTES (now, or after 'drain' or the end). */
  whenWritable(fn: () => void): void {
    if (this.#ended || this.backlog < CHANNEL_BACKLOG_BYTES) fn();
    else this.#drainWaiters.push(fn);
  }

  /** Sends PING every `intervalMs`; three unanswered in a row end the channel with keepalive-timeout. */
  startKeepalive(intervalMs: number): void {
    this.#ping?.cancel();
    this.#ping = this.clock.setInterval(() => {
      if (this.#unanswered >= 3) return this.close('keepalive-timeout', `no PONG for ${3 * intervalMs}ms`);
      this.#unanswered++;
      this.#pingCounter = (this.#pingCounter + 1) >>> 0;
      this.send({ type: 'ping', counter: this.#pingCounter });
    }, intervalMs);
  }

  /** GOAWAY(code) then close. Idempotent. */
  close(code: RefusalCode, message: string): void {
    if (this.#ended) return;
    this.send({ type: 'goaway', code, message });
    this.#flush();
    this.socket.end();
    this.#finish({ sent: code });
    this.destroyAfter(2000);
  }

  /** Sends a FIN after the frames sent so far (no GOAWAY: the caller sent what it had to say). */
  end(): void {
    this.#flush();
    this.socket.end();
  }

  /**
   * Destroys the socket (ending the channel with `end` if it has not ended) after `ms`, unless the
   * socket closed first: after our side ended, a peer that never closes its side must not hold
   * the socket open. Idempotent: the first call's deadline holds.
   */
  destroyAfter(ms: number, end: ChannelEnd = {}): void {
    if (this.#linger || this.socket.destroyed) return;
    this.#linger = this.clock.setTimeout(() => this.destroy(end), ms);
  }

  /** Closes without a GOAWAY (the handshake sent AUTH_ERROR, or the owner is going away). */
  destroy(end: ChannelEnd = {}): void {
    this.#linger?.cancel();
    this.#finish(end);
    this.#flush(); // what was sent this turn (an AUTH_ERROR) goes out before the socket closes
    this.socket.destroy();
  }

  #finish(end: ChannelEnd): void {
    if (this.#ended) return;
    this.#ended = end;
    this.#ping?.cancel();
    for (const w of this.#drainWaiters.splice(0)) w();
    this.#resolveEnded(end);
  }

  #onData(chunk: Buffer): void {
    if (this.#ended && this.#ended.sent === undefined) return;
    let messages: ControlMessage[];
    try {
      messages = this.#reader.push(chunk);
    } catch (err) {
      return this.#protocolError(err as Error);
    }
    for (const m of messages) {
      if (this.#ended) return;
      try {
        this.#phase = receiveTransition(this.role, this.#phase, m.type);
      } catch (err) {
        return this.#protocolError(err as Error);
      }
      this.#reader.maxFrameBytes = maxFrameBytesFor(this.#phase);
      if (m.type === 'ping') {
        this.send({ type: 'pong', counter: m.counter });
        continue;
      }
      if (m.type === 'pong') {
        this.#unanswered = 0;
        continue;
      }
      if (m.type === 'goaway') {
        this.#onMessage(m);
        this.#flush();
        this.socket.end();
        this.#finish({ goaway: { code: m.code, message: m.message } });
        return;
      }
      this.#onMessage(m);
    }
  }

  #protocolError(err: Error): void {
    if (this.#ended) return;
    const open = this.#phase === 'open';
    if (open && isTunnelError(err)) this.send({ type: 'goaway', code: 'protocol-error', message: err.message });
    this.#finish({ error: err });
    this.#flush();
    if (!open) return void this.socket.destroy();
    this.socket.end();
    this.destroyAfter(1000);
  }
}
