import type { EndReason } from '../../observe/events.js';
import type { StreamConn, StreamDatapath } from '../../datapath/stream-datapath.js';
import type { RelayedConn, RelayedConnEvents } from '../../datapath/relayed-conn.js';
import type { SocketRelayOutcome } from '../dialer.js';
import type { RelayedStream, StreamSink } from './socket-relay.js';

/**
 * Relays a plain connection of a stream datapath and a tunnel stream without a Node socket: the
 * datapath reads the connection (relayed-conn.ts) and each read goes out as STREAM_DATA
 * (writeDirect); the stream's received chunks are written with the datapath. The contract is
 * relaySocketToStream's (socket-relay.ts): a FIN either way is forwarded as a FIN; `stop` closes
 * both (a stream not finished is reset `cancel`); `onDone` runs once both are closed, with the
 * connection's counters; `idleTimeoutMs` of no bytes on the connection ends both. Beyond it, a
 * reset is forwarded as a reset: the connection's RST resets the stream, the peer's reset of the
 * stream sends an RST on the connection.
 *
 * Backpressure stays bounded: reading is paused while a read's bytes wait for the peer's window
 * or the channel (reads already in the datapath's batch wait in order behind it); received bytes
 * give their credit back once they left for the socket, so the datapath holds at most the window.
 * `header` (a PROXY header) is written first, outside the stream's credit.
 *
 * Undefined when the datapath cannot relay this connection (the caller relays its socket).
 */
export function relayConnToStream(
  conn: StreamConn,
  datapath: StreamDatapath,
  stream: RelayedStream,
  idleTimeoutMs: number,
  onDone: (outcome: SocketRelayOutcome) => void,
  header?: Buffer,
): ((reason: EndReason) => void) | undefined {
  if (!datapath.relayed || stream.destroyed) return undefined;
  const relay = new ConnStreamRelay(stream, onDone);
  const rc = datapath.relayed(conn, idleTimeoutMs, relay);
  if (!rc) return undefined;
  return relay.start(rc, header);
}

class ConnStreamRelay implements RelayedConnEvents {
  #rc!: RelayedConn;
  #reason: EndReason | undefined;
  #open = 2;
  #connClosed = false;
  /** A read not yet sent (the window or the channel is full), and the reads behind it. */
  #sending = false;
  readonly #queue: Buffer[] = [];
  #paused = false;
  #connEnded = false;
  /** Bytes the datapath holds for the connection; those of the header give no credit back. */
  #held = 0;
  #headerHeld = 0;
  /** The stream's FIN waits for the held bytes to leave; then it is sent. */
  #endWanted = false;
  #endSent = false;

  constructor(
    readonly stream: RelayedStream,
    readonly onDone: (outcome: SocketRelayOutcome) => void,
  ) {}

  start(rc: RelayedConn, header: Buffer | undefined): (reason: EndReason) => void {
    this.#rc = rc;
    if (header) {
      const held = rc.write(header);
      if (held > 0) this.#held = this.#headerHeld = held;
    }
    const stream = this.stream;
    stream.on('error', () => this.#stopOnReset());
    stream.on('close', () => {
      // Destroyed before both directions ended without an error (a stop of its own): the connection goes too.
      if (!stream.finished && !this.#connClosed) this.stop(this.#reason ?? 'upstream-error');
      this.#closed();
    });
    const sink: StreamSink = { data: (chunk) => this.#toConn(chunk), end: () => this.#streamEnded() };
    stream.attachSink(sink);
    return this.stop;
  }

  readonly stop = (why: EndReason): void => {
    this.#reason ??= why;
    this.#closeConn();
    this.stream.destroy();
  };

  #stopOnReset(): void {
    this.#reason ??= 'upstream-error';
    if (!this.#connClosed) {
      this.#connClosed = true;
      this.#rc.reset();
      this.#closed();
    }
    this.stream.destroy();
  }

  #closeConn(): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
    this.#rc.close();
    this.#closed();
  }

  #closed(): void {
    if (--this.#open > 0) return;
    this.onDone({ reason: this.#reason ?? 'client-closed', bytesFromClient: this.#rc.bytesRead, bytesToClient: this.#rc.bytesWritten });
  }

  /** Both ways over on the connection (its FIN read, ours sent after every byte): it closes. */
  #maybeDone(): void {
    if (this.#connEnded && this.#endSent) this.#closeConn();
  }

  // ---- the connection's events ----

  data(chunk: Buffer): void {
    if (this.#sending || this.#queue.length > 0) {
      this.#queue.push(chunk);
      return;
    }
    this.#send(chunk);
  }

  #send(chunk: Buffer): void {
    this.#sending = true;
    this.stream.writeDirect(chunk, this.#sent);
    if (this.#sending && !this.#paused && !this.#connClosed) {
      this.#paused = true;
      this.#rc.pause(true);
    }
  }

  readonly #sent = (): void => {
    this.#sending = false;
    const next = this.#queue.shift();
    if (next) return this.#send(next);
    if (this.#connEnded) return this.#endUp();
    if (this.#paused && !this.#connClosed) {
      this.#paused = false;
      this.#rc.pause(false);
    }
  };

  fin(): void {
    this.#reason ??= 'client-closed';
    this.#connEnded = true;
    if (!this.#sending && this.#queue.length === 0) this.#endUp();
    this.#maybeDone();
  }

  #endUp(): void {
    this.stream.endDirect();
    if (this.stream.finished) this.stream.destroy();
  }

  error(): void {
    this.#reason ??= 'client-error';
    this.#closeConn();
    this.stream.destroy();
  }

  drained(bytes: number): void {
    this.#held -= bytes;
    const header = Math.min(bytes, this.#headerHeld);
    this.#headerHeld -= header;
    if (bytes > header) this.stream.consumed(bytes - header);
    if (this.#held === 0 && this.#endWanted) this.#sendEnd();
  }

  idle(): void {
    this.stop('idle-timeout');
  }

  // ---- the stream's received data (its sink) ----

  #toConn(chunk: Buffer): void {
    if (this.#connClosed) return;
    const held = this.#rc.write(chunk);
    if (held < 0) return this.error();
    if (held > 0) this.#held += held;
    if (held < chunk.length) this.stream.consumed(chunk.length - held);
  }

  /** The peer's FIN: forwarded once the held bytes left. */
  #streamEnded(): void {
    this.#reason ??= 'upstream-closed';
    if (this.#held === 0) this.#sendEnd();
    else this.#endWanted = true;
    if (this.stream.finished) this.stream.destroy();
  }

  #sendEnd(): void {
    this.#endWanted = false;
    if (this.#endSent || this.#connClosed) return;
    this.#endSent = true;
    this.#rc.end();
    this.#maybeDone();
  }
}
