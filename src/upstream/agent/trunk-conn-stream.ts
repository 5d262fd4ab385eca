import { Duplex } from 'node:stream';
import type { Clock, Timer } from '../../core/clock.js';
import type { SluiceError } from '../../core/errors.js';
import type { EndReason } from '../../observe/events.js';
import type { PairCounters, PairEnd, StreamConn, StreamDatapath } from '../../datapath/stream-datapath.js';
import type { StreamTrunk } from '../../datapath/stream-trunk.js';
import type { ConnRelaying, SocketRelaying, SocketRelayOutcome } from '../dialer.js';
import { StreamResetError } from './tunnel-stream.js';
import { READY_GRACE_MS } from './data-conn-stream.js';

/** How a trunk stream went: attached, fell back (the trunk was gone), fell back (no READY: the trunk was silent and is closed). */
export type TrunkStreamOutcome = 'attached' | 'fallback' | 'no-ready';

/**
 * An exposed TCP stream on a trunk, at the gateway (docs/tunnel-protocol.md, "Trunks"): what
 * AgentStreamDialer.dialEarly returns when the agent has a trunk. The stream id was expected on
 * the trunk before STREAM_OPEN went out, so whatever the agent's side sends first waits in the
 * engine. The route hands the client over at once (`relayConn`); it is attached to the trunk once
 * both STREAM_ACCEPT and the agent's READY on the trunk arrived, and until then nothing of it is
 * read. A trunk that is gone by then (here, or at the agent: STREAM_RESET `internal`), or silent
 * (no READY within READY_GRACE_MS after STREAM_ACCEPT: its NAT mapping died while idle; it is
 * closed, so the agent replaces it), loses nothing: the agent is told (STREAM_RESET cancel) and the
 * same client goes on a multiplexed stream (`fallback`). `settled` (the route's) is called once:
 * at the attach, with the failed dial, or as the fallback's. A Duplex only by type.
 */
export class TrunkConnStream extends Duplex implements ConnRelaying {
  #accepted: boolean | undefined;
  /** READY arrived (true), the trunk ended first (false), or not yet. */
  #ready: boolean | undefined;
  #silent = false;
  #fellBack = false;
  #grace: Timer | undefined;
  #agentLost = false;
  #settledOnce = false;
  #relay: { readonly down: StreamConn; readonly idleTimeoutMs: number; readonly onDone: (o: SocketRelayOutcome) => void } | undefined;
  #done = false;
  #finished = false;
  #stopPair: (() => PairCounters) | undefined;
  #stopFallback: ((reason: EndReason) => void) | undefined;
  #cancel: ((reset?: boolean) => void) | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly trunk: StreamTrunk,
    private readonly sid: number,
    /** Opens the same client as a multiplexed stream (openEarly's `settled` and errors). */
    private readonly fallback: (settled: (err?: SluiceError) => void) => Duplex & SocketRelaying,
    private readonly settled: (err?: SluiceError) => void,
    /** Called once when the trunk is done with this stream (ended, stopped, failed, or fell back). */
    private readonly finished: () => void,
    /** Counts the stream: attached to the trunk, or fallen back to a multiplexed stream. */
    private readonly count: (how: TrunkStreamOutcome) => void = () => {},
  ) {
    super();
  }

  /** The trunk's READY for this stream (`alive`), or its end before it (StreamTrunk.expect's `onReady`). */
  readied(alive: boolean): void {
    if (this.#silent) return; // closed here for its silence: the fallback is under way
    this.#ready ??= alive;
    this.#grace?.cancel();
    if (this.#accepted && this.#relay && !this.#stopPair && !this.#done) this.#attach();
  }

  /** STREAM_ACCEPT came and READY did not within the grace: the trunk is dead, closed here. */
  #expired(): void {
    this.#grace = undefined;
    if (this.#ready !== undefined || this.#done) return;
    this.#silent = true;
    this.trunk.close(); // its other streams end too: it is dead
    this.#ready = false;
    if (this.#relay) this.#fallBack();
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
      this.#grace?.cancel();
      this.trunk.drop(this.sid);
      if (this.#relay) this.#fallBack();
      return;
    }
    this.#accepted = err === undefined;
    if (err) {
      this.#grace?.cancel();
      this.trunk.drop(this.sid);
      return this.#settle(err);
    }
    if (this.#ready === undefined) this.#grace = this.clock.setTimeout(() => this.#expired(), READY_GRACE_MS);
    else if (this.#relay) this.#attach();
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
    if (this.#ready === undefined) return; // READY still awaited (the grace runs)
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
    if (this.#fellBack) return;
    this.#fellBack = true;
    const r = this.#relay!;
    this.#finish();
    this.count(this.#silent ? 'no-ready' : 'fallback');
    if (this.#silent) this.#cancel?.(true); // the agent's side of the stream stops
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
    if (this.#agentLost || this.#silent) this.#fallBack();
    else if (this.#accepted) this.#attach();
    return (reason) => {
      if (this.#done) return;
      if (this.#stopFallback) return this.#stopFallback(reason);
      this.#done = true;
      this.#grace?.cancel();
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
      this.#grace?.cancel();
      this.#cancel?.(this.#accepted === undefined);
      this.trunk.drop(this.sid);
      this.#finish();
    }
    cb(err);
  }
}
