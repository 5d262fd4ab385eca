import { Duplex } from 'node:stream';
import type { Clock, Timer } from '../../core/clock.js';
import type { SluiceError } from '../../core/errors.js';
import type { EndReason } from '../../observe/events.js';
import { relaySealed } from '../../datapath/sealed-relay.js';
import type { PairCounters, PairEnd, SealedKeys, StreamConn, StreamDatapath } from '../../datapath/stream-datapath.js';
import type { ConnRelaying, SocketRelaying, SocketRelayOutcome } from '../dialer.js';
import { StreamResetError } from './tunnel-stream.js';

/**
 * After STREAM_ACCEPT, how long the gateway still waits for the data connection's READY before it
 * calls the connection dead. The agent writes READY just before it sends STREAM_ACCEPT, on a path
 * through the same NATs, so a live connection's READY is there at about the same time; 2 s leave
 * room for a lost segment's retransmissions (Linux: RTO from 200 ms).
 */
export const READY_GRACE_MS = 2000;

/** Why a data connection was found dead when a stream was to start on it (counted by the gateway). */
export type DataConnDeath = 'closed' | 'forged' | 'no-ready';

/** What a stream needs to start on a data connection, from the gateway that took it. */
export interface DataConnStart {
  readonly clock: Clock;
  /** READY read from `conn` under `keys` ('ready'), why not ('closed', 'forged'), or undefined once `expired`. */
  readReady(conn: StreamConn, keys: SealedKeys, expired: Promise<void>): Promise<'ready' | 'closed' | 'forged' | undefined>;
  /**
   * The data connection is dead: count it and open the same stream multiplexed (openEarly's
   * `settled` and errors). The data connection's stream is already withdrawn.
   */
  fallback(why: DataConnDeath, settled: (err?: SluiceError) => void): Duplex & SocketRelaying;
}

/**
 * An exposed TCP stream on a sealed data connection, at the gateway (docs/tunnel-protocol.md, "Data
 * connections"): what AgentStreamDialer.dialEarly returns when the agent had an idle data
 * connection. The route hands it the client at once (`relayConn`), but the client's bytes stay in
 * their socket until the agent's READY arrived on the data connection: then the two are joined
 * (pipeSealed, or the TypeScript relay). No READY (closed, forged, not within READY_GRACE_MS
 * after STREAM_ACCEPT, or the agent answered that it no longer holds the connection: a
 * STREAM_RESET `internal`): the connection was dead while idle; it is closed, the agent told
 * (STREAM_RESET cancel) and the same client goes on a multiplexed stream, no byte lost.
 * `settled` (the route's) is called once: at STREAM_ACCEPT and READY both, with the failed dial,
 * or as the fallback's. A pair that ends before the answer is reported only after it, so a refused
 * dial is still a failed dial and an accepted one a session. A Duplex only by type.
 */
export class DataConnStream extends Duplex implements ConnRelaying {
  #accepted: boolean | undefined;
  #ready = false;
  #settledOnce = false;
  #held: PairEnd | undefined;
  #deliver: ((end: PairEnd) => void) | undefined;
  #relaying = false;
  #cancel: ((reset?: boolean) => void) | undefined;
  #expire: (() => void) | undefined;
  #grace: Timer | undefined;
  #finished = false;
  #agentLost = false;

  constructor(
    private readonly conn: StreamConn,
    private readonly keys: SealedKeys,
    private readonly start: DataConnStart,
    /** The route's: the stream's answer (see the class). */
    private readonly settled: (err?: SluiceError) => void,
    /** Called once when the data connection is done with (relay ended, destroyed unused, or fell back). */
    private readonly finished: () => void,
    /** Takes the data connection back when the pair ended with END both ways (docs/tunnel-protocol.md, "Reuse"). */
    private readonly returned: (conn: StreamConn) => void,
  ) {
    super();
  }

  /** What withdraws the STREAM_OPEN's wait for an answer (with `reset`: tells the agent too). */
  set cancel(fn: (reset?: boolean) => void) {
    this.#cancel = fn;
  }

  /** The agent's answer: `err` undefined at STREAM_ACCEPT. */
  answered(err: SluiceError | undefined): void {
    if (err?.cause instanceof StreamResetError && err.cause.resetCode === 'internal' && this.#relaying && !this.#ready) {
      // The agent no longer holds the connection (it closed it as this end took it): dead, as a close.
      this.#agentLost = true;
      return this.#expire?.();
    }
    this.#accepted = err === undefined;
    if (err) {
      this.#expire?.();
      return this.#settle(err);
    }
    if (this.#ready || !this.#relaying) return this.#settle();
    this.#grace = this.start.clock.setTimeout(() => this.#expire?.(), READY_GRACE_MS);
  }

  #settle(err?: SluiceError): void {
    if (this.#settledOnce) return;
    this.#settledOnce = true;
    this.settled(err);
    const held = this.#held;
    this.#held = undefined;
    if (held) this.#deliver?.(held);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.finished();
  }

  relayConn(down: StreamConn, datapath: StreamDatapath, idleTimeoutMs: number, onDone: (outcome: SocketRelayOutcome) => void): (reason: EndReason) => void {
    this.#relaying = true;
    let done = false;
    let stopPair: (() => PairCounters) | undefined;
    let stopFallback: ((reason: EndReason) => void) | undefined;
    const deliver = (end: PairEnd) => {
      if (done) return;
      done = true;
      this.#finish();
      onDone(end);
    };
    this.#deliver = deliver;
    const expired = new Promise<void>((resolve) => (this.#expire = resolve));
    void this.start.readReady(this.conn, this.keys, expired).then((outcome) => {
      this.#grace?.cancel();
      if (done || this.#accepted === false) return; // stopped, or a failed dial the route is ending
      if (outcome === 'ready') {
        this.#ready = true;
        const keys = { ...this.keys, openSeq: this.keys.openSeq + 1 };
        const onEnd = (end: PairEnd) => {
          if (end.kept) this.returned(this.conn); // at once: the agent's next hello may be on its way
          if (this.#settledOnce) deliver(end);
          else this.#held = end;
        };
        stopPair = datapath.pipeSealed(down, this.conn, keys, idleTimeoutMs, onEnd, true) ?? relaySealed(down.socket(), this.conn.socket(), keys, idleTimeoutMs, onEnd, true);
        if (this.#accepted) this.#settle();
        return;
      }
      // Dead while idle: nothing of the client was taken; the same stream goes multiplexed.
      this.#cancel?.(true);
      this.conn.reset();
      this.conn.destroy();
      this.#finish();
      let tunnel: Duplex & SocketRelaying;
      try {
        tunnel = this.start.fallback(outcome ?? (this.#agentLost ? 'closed' : 'no-ready'), (err) => this.#settle(err));
      } catch (err) {
        return this.#settle(err as SluiceError); // the route stops this relay
      }
      stopFallback = tunnel.relaySocket(down.socket(), idleTimeoutMs, (o) => {
        if (done) return;
        done = true;
        onDone(o);
      });
      if (stopFallback) return;
      tunnel.destroy(); // a new stream is idle, so this does not happen; ended as an upstream failure if it did
      down.destroy();
      deliver({ reason: 'upstream-error', bytesFromClient: 0, bytesToClient: 0 });
    });
    return (reason) => {
      if (done) return;
      if (stopFallback) return stopFallback(reason);
      done = true;
      this.#expire?.();
      this.#grace?.cancel();
      this.#cancel?.();
      this.#finish();
      const c = stopPair?.() ?? { bytesFromClient: 0, bytesToClient: 0 };
      if (!stopPair) {
        // Never joined: the client's unread bytes make its close an RST, as a failed dial's should.
        this.conn.destroy();
        down.destroy();
      }
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
      this.#expire?.();
      this.conn.destroy();
      this.#finish();
    }
    cb(err);
  }
}
