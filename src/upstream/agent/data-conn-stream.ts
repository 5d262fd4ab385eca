import { Duplex } from 'node:stream';
import type { SluiceError } from '../../core/errors.js';
import type { EndReason } from '../../observe/events.js';
import { relaySealed } from '../../datapath/sealed-relay.js';
import type { PairCounters, PairEnd, SealedKeys, StreamConn, StreamDatapath } from '../../datapath/stream-datapath.js';
import type { ConnRelaying, SocketRelayOutcome } from '../dialer.js';

/**
 * An exposed TCP stream on a sealed data connection, at the gateway (docs/tunnel-protocol.md, "Data
 * connections"): what AgentStreamDialer.dialEarly returns when the agent had an idle data
 * connection. The route joins the client to it with `relayConn` at once (pipeSealed, or the
 * TypeScript relay), so the client's first bytes flow before the agent's answer; `answered` takes
 * that answer. A pair that ends before the answer (the far side reset, or the service spoke and
 * closed at once) is reported only after it, so a refused dial is still a failed dial and an
 * accepted one a session. A Duplex only by type: nothing is read or written through it.
 */
export class DataConnStream extends Duplex implements ConnRelaying {
  #accepted: boolean | undefined;
  #held: PairEnd | undefined;
  #deliver: ((end: PairEnd) => void) | undefined;
  #relaying = false;
  #cancel: (() => void) | undefined;

  constructor(
    private readonly conn: StreamConn,
    private readonly keys: SealedKeys,
    /** Called once when the stream is over (relay ended or destroyed unused). */
    private readonly finished: () => void,
    /** Takes the data connection back when the pair ended with END both ways (docs/tunnel-protocol.md, "Reuse"). */
    private readonly returned?: (conn: StreamConn) => void,
  ) {
    super();
  }

  /** What withdraws the STREAM_OPEN's wait for an answer (the destroy of an unused stream calls it). */
  set cancel(fn: () => void) {
    this.#cancel = fn;
  }

  /** The agent's answer: `err` undefined at STREAM_ACCEPT. Calls `settled`, then delivers an end held for it. */
  answered(err: SluiceError | undefined, settled: (err?: SluiceError) => void): void {
    this.#accepted = err === undefined;
    settled(err);
    const held = this.#held;
    this.#held = undefined;
    if (held) this.#deliver?.(held);
  }

  relayConn(down: StreamConn, datapath: StreamDatapath, idleTimeoutMs: number, onDone: (outcome: SocketRelayOutcome) => void): (reason: EndReason) => void {
    this.#relaying = true;
    let done = false;
    const deliver = (end: PairEnd) => {
      if (done) return;
      done = true;
      this.finished();
      onDone(end);
    };
    this.#deliver = deliver;
    const keep = this.returned !== undefined;
    const onEnd = (end: PairEnd) => {
      if (end.kept) this.returned!(this.conn); // at once: the agent's next hello may be on its way
      if (this.#accepted === undefined) this.#held = end;
      else deliver(end);
    };
    const stopPair: () => PairCounters =
      datapath.pipeSealed(down, this.conn, this.keys, idleTimeoutMs, onEnd, keep) ?? relaySealed(down.socket(), this.conn.socket(), this.keys, idleTimeoutMs, onEnd, keep);
    return (reason) => {
      if (done) return;
      done = true;
      this.#cancel?.();
      this.finished();
      const c = stopPair();
      queueMicrotask(() => onDone({ reason, bytesFromClient: c.bytesFromClient, bytesToClient: c.bytesToClient }));
    };
  }

  override _read(): void {}

  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    cb(new Error('a data connection stream is joined with relayConn, not written'));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#relaying) {
      this.#cancel?.();
      this.conn.destroy();
      this.finished();
    }
    cb(err);
  }
}
