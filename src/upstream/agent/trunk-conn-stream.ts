import { Duplex } from 'node:stream';
import type { SluiceError } from '../../core/errors.js';
import type { EndReason } from '../../observe/events.js';
import type { PairCounters, PairEnd, StreamConn, StreamDatapath } from '../../datapath/stream-datapath.js';
import type { StreamTrunk } from '../../datapath/stream-trunk.js';
import type { ConnRelaying, SocketRelaying, SocketRelayOutcome } from '../dialer.js';
import { StreamResetError } from './tunnel-stream.js';

/**
 * An exposed TCP stream on a trunk, at the gateway (docs/tunnel-protocol.md, "Trunks"): what
 * AgentStreamDialer.dialEarly returns when the agent has a trunk. The stream id was expected on
 * the trunk before STREAM_OPEN went out, so whatever the agent's side sends first waits in the
 * engine. The route hands the client over at once (`relayConn`); it is attached to the trunk at
 * STREAM_ACCEPT, and until then nothing of it is read. A trunk that is gone by then (here, or at
 * the agent: STREAM_RESET `internal`) loses nothing: the agent is told (STREAM_RESET cancel) and the
 * same client goes on a multiplexed stream (`fallback`). `settled` (the route's) is called once:
 * at the attach, with the failed dial, or as the fallback's. A Duplex only by type.
 */
export class TrunkConnStream extends Duplex implements ConnRelaying {
  #accepted: boolean | undefined;
  #agentLost = false;
  #settledOnce = false;
  #relay: { readonly down: StreamConn; readonly idleTimeoutMs: number; readonly onDone: (o: SocketRelayOutcome) => void } | undefined;
  #done = false;
  #finished = false;
  #stopPair: (() => PairCounters) | undefined;
  #stopFallback: ((reason: EndReason) => void) | undefined;
  #cancel: ((reset?: boolean) => void) | undefined;

  constructor(
    private readonly trunk: StreamTrunk,
    private readonly sid: number,
    /** Opens the same client as a multiplexed stream (openEarly's `settled` and errors). */
    private readonly fallback: (settled: (err?: SluiceError) => void) => Duplex & SocketRelaying,
    private readonly settled: (err?: SluiceError) => void,
    /** Called once when the trunk is done with this stream (ended, stopped, failed, or fell back). */
    private readonly finished: () => void,
    /** Counts the stream: attached to the trunk, or fallen back to a multiplexed stream. */
    private readonly count: (how: 'attached' | 'fallback') => void = () => {},
  ) {
    super();
  }

  /** What withdraws the STREAM_OPEN's wait for an answer (with `reset`: tells the agent too). */
  set cancel(fn: (reset?: boolean) => void) {
    this.#cancel = fn;
  }

  /** The agent's answer: `err` undefined at STREAM_ACCEPT. */
  answered(err: SluiceError | undefined): void {
    if (err?.cause instanceof StreamResetError && err.cause.resetCode === 'internal') {
      // The agent's end of the trunk is gone (or cannot take the local connection): multiplexed instead.
      this.#agentLost = true;
      this.trunk.drop(this.sid);
      if (this.#relay) this.#fallBack();
      return;
    }
    this.#accepted = err === undefined;
    if (err) {
      this.trunk.drop(this.sid);
      return this.#settle(err);
    }
    if (this.#relay) this.#attach();
  }

  #settle(err?: SluiceError): void {
    if (this.#settledOnce) return;
    this.#settledOnce = true;
    this.settled(err);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.finished();
  }

  #deliver(o: SocketRelayOutcome): void {
    if (this.#done) return;
    this.#done = true;
    this.#finish();
    this.#relay!.onDone(o);
  }

  #attach(): void {
    const r = this.#relay!;
    const stop = this.trunk.attach(this.sid, r.down, r.idleTimeoutMs, true, (end: PairEnd) => this.#deliver(end));
    if (!stop) {
      this.#cancel?.(true); // the agent's side of the stream stops
      return this.#fallBack();
    }
    this.#stopPair = stop;
    this.count('attached');
    this.#settle();
  }

  #fallBack(): void {
    const r = this.#relay!;
    this.#finish();
    this.count('fallback');
    let tunnel: Duplex & SocketRelaying;
    try {
      tunnel = this.fallback((err) => this.#settle(err));
    } catch (err) {
      return this.#settle(err as SluiceError); // the route stops this relay
    }
    this.#stopFallback = tunnel.relaySocket(r.down.socket(), r.idleTimeoutMs, (o) => this.#deliver(o));
    if (this.#stopFallback) return;
    tunnel.destroy();
    r.down.destroy();
    this.#deliver({ reason: 'upstream-error', bytesFromClient: 0, bytesToClient: 0 });
  }

  relayConn(down: StreamConn, _datapath: StreamDatapath, idleTimeoutMs: number, onDone: (outcome: SocketRelayOutcome) => void): (reason: EndReason) => void {
    this.#relay = { down, idleTimeoutMs, onDone };
    if (this.#agentLost) this.#fallBack();
    else if (this.#accepted) this.#attach();
    return (reason) => {
      if (this.#done) return;
      if (this.#stopFallback) return this.#stopFallback(reason);
      this.#done = true;
      // Before the answer, the agent is told, so a stream it is still dialing stops when it starts.
      this.#cancel?.(this.#accepted === undefined);
      this.#finish();
      const c = this.#stopPair?.() ?? { bytesFromClient: 0, bytesToClient: 0 };
      if (!this.#stopPair) {
        this.trunk.drop(this.sid);
        down.destroy();
      }
      queueMicrotask(() => onDone({ reason, bytesFromClient: c.bytesFromClient, bytesToClient: c.bytesToClient }));
    };
  }

  override _read(): void {}

  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    cb(new Error('a trunk stream is joined with relayConn, not written'));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#relay) {
      this.#cancel?.(this.#accepted === undefined);
      this.trunk.drop(this.sid);
      this.#finish();
    }
    cb(err);
  }
}
