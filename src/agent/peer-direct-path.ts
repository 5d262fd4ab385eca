import type { Clock, Timer } from '../core/clock.js';
import type { TunnelEnd } from '../datapath/offload.js';
import type { DirectFlowEnd, PeerAttempt } from './peer-attempt.js';

export type PeerPathKind = 'direct' | 'relayed';

/**
 * How often the direct path is proven while it is up; after DIRECT_DOUBT_MS without an ack, flows
 * send each datagram on both paths (UDP allows a duplicate, not a loss); after DIRECT_SILENCE_MS
 * they use the relay alone until acks return.
 */
export const DIRECT_KEEPALIVE_MS = 250;
export const DIRECT_DOUBT_MS = 600;
export const DIRECT_SILENCE_MS = 1000;

/** What the direct path reports to the link that owns it. */
export interface DirectPathDeps {
  readonly clock: Clock;
  /** The link's counters: the path adds its datagrams, and a switch each time flows change path. */
  readonly counters: { directSent: number; directReceived: number; switches: number };
  /** Direct datagrams moved: the link is in use. */
  readonly touch: () => void;
  /** The silence rule or a returning ack moved flows between the relay and the direct path. */
  readonly changed: () => void;
}

/**
 * The direct path of one peer link: the current ICE attempt (peer-attempt.ts) and whether it may
 * carry flows now. While the attempt is connected, a sealed keepalive goes out every
 * DIRECT_KEEPALIVE_MS and the peer acks it; an ack older than DIRECT_DOUBT_MS puts the path in
 * doubt (flows send on both paths), none for DIRECT_SILENCE_MS makes it suspect (flows use the
 * relay alone, the native batch's entries close) until an ack returns.
 *
 * The link decides when attempts start and end (`adopt`, `drop`) and closes what `drop` returns;
 * this object never closes an attempt. `startKeepalive`/`stopKeepalive` are idempotent.
 */
export class DirectPath {
  #attempt: PeerAttempt | undefined;
  #suspect = false;
  #lastAck = 0;
  #keepaliveCounter = 0;
  #timer: Timer | undefined;

  constructor(private readonly deps: DirectPathDeps) {}

  /** The live attempt, connected or not. */
  get attempt(): PeerAttempt | undefined {
    return this.#attempt;
  }

  /** No ack for DIRECT_SILENCE_MS: flows use the relay alone. */
  get suspect(): boolean {
    return this.#suspect;
  }

  /** True when flows may send direct datagrams now. */
  get usable(): boolean {
    return this.#attempt?.connected === true && !this.#suspect;
  }

  /** The last ack is late: send on the relay too. */
  get inDoubt(): boolean {
    return this.deps.clock.now() - this.#lastAck > DIRECT_DOUBT_MS;
  }

  /** `direct` when flows use an ICE pair that no relay carries; a TURN pair is `relayed`. */
  get kind(): PeerPathKind {
    return this.usable && this.#attempt?.ice.selectedPair?.relayed !== true ? 'direct' : 'relayed';
  }

  /** A new attempt replaces the live one (the link dropped that one first). */
  adopt(a: PeerAttempt): void {
    this.#attempt = a;
  }

  /** The attempt is over: forgets it and its suspicion and returns it for the caller to close. */
  drop(): PeerAttempt | undefined {
    const a = this.#attempt;
    if (!a) return undefined;
    this.#attempt = undefined;
    this.#suspect = false;
    return a;
  }

  /** ICE selected a pair: the path counts as acked now. */
  proven(): void {
    this.#lastAck = this.deps.clock.now();
    this.#suspect = false;
  }

  /** The peer acked a keepalive; a suspect path carries flows again. */
  ack(): void {
    this.#lastAck = this.deps.clock.now();
    if (!this.#suspect) return;
    this.#suspect = false;
    this.deps.counters.switches++;
    this.deps.changed();
  }

  /** Sends one datagram of a flow directly: `tag` as the peer must read it. False when not possible now. */
  send(tag: number, payload: Buffer): boolean {
    if (!this.usable || !this.#attempt!.send(tag, payload)) return false;
    this.deps.counters.directSent++;
    return true;
  }

  /**
   * One flow's tunnel side over the direct path for the native batch, while that path is usable
   * and not in doubt (in doubt, JavaScript sends on both paths). The batch's datagrams count as
   * direct ones and as activity. The suspect rule closes it at once; the doubt rule (time based)
   * is checked by `valid` on the session table's sweep.
   */
  offloadEnd(flow: DirectFlowEnd): TunnelEnd | null {
    const a = this.#attempt;
    if (!a || !this.usable || this.inDoubt) return null;
    return a.offloadEnd({
      ...flow,
      forwarded: (to, from) => {
        this.deps.counters.directSent += to;
        this.deps.counters.directReceived += from;
        if (to + from > 0) this.deps.touch();
        flow.forwarded(to, from);
      },
      valid: () => this.#attempt === a && this.usable && !this.inDoubt && flow.valid(),
    });
  }

  /** Keepalives on the direct path while it is connected, and the silence rule; restarts the period. */
  startKeepalive(): void {
    this.#timer?.cancel();
    this.#timer = this.deps.clock.setInterval(() => {
      const a = this.#attempt;
      if (!a?.connected) return;
      this.#keepaliveCounter = (this.#keepaliveCounter + 1) >>> 0;
      a.keepalive(this.#keepaliveCounter);
      if (!this.#suspect && this.deps.clock.now() - this.#lastAck > DIRECT_SILENCE_MS) {
        this.#suspect = true;
        a.offloads.closeAll();
        this.deps.counters.switches++;
        this.deps.changed();
      }
    }, DIRECT_KEEPALIVE_MS);
  }

  stopKeepalive(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
