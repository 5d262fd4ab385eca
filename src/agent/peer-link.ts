import { randomBytes } from 'node:crypto';
import type { StunPeer } from '../turn/stun-transaction.js';
import { PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { TunnelEnd } from '../datapath/offload.js';
import { PeerAttempt, type DirectFlowEnd } from './peer-attempt.js';
import { diagnose, type PeerDiagnosis } from './peer-diagnosis.js';
import { encodePeerSignal, type PeerSignal, type PeerSignalBody } from './peer-signal.js';
import { nextPeerState, type PeerState } from './peer-link-state.js';
import { DirectPath, type PeerPathKind } from './peer-direct-path.js';
import { keepsOwnOffer, OfferSchedule } from './peer-offers.js';
import { attemptOptions, type PeerAttemptSettings } from './peer-attempt-settings.js';

export { DIRECT_DOUBT_MS, DIRECT_KEEPALIVE_MS, DIRECT_SILENCE_MS, type PeerPathKind } from './peer-direct-path.js';
export { ANSWER_TIMEOUT_MS, FIRST_RETRY_MS } from './peer-offers.js';

/** A link's identity, its ICE settings, and what it reports; the peers manager implements them. */
export interface PeerLinkDeps extends PeerAttemptSettings {
  readonly self: string;
  readonly peer: string;
  readonly directRetryMs: number;
  /** Sends a SIGNAL to the peer; false when the control channel is down. */
  readonly signal: (payload: Buffer) => boolean;
  /** A direct datagram for one of this agent's exposed services (connectee tag `tag`). */
  readonly deliverExposed: (link: PeerLink, tag: number, payload: Buffer) => void;
  /** A direct datagram answering one of this agent's flows (the peer's connectee tag). */
  readonly deliverFlow: (link: PeerLink, peerTag: number, payload: Buffer) => void;
  /** State, path or reason changed. */
  readonly changed: (link: PeerLink) => void;
}

/**
 * The path to one other agent (docs/connect.md): relayed through the gateway at once, direct once
 * an ICE attempt (peer-attempt.ts, on the agent's own gateway socket) selects a pair. While
 * direct, keepalives and acks decide whether flows use it (peer-direct-path.ts: in doubt, both
 * paths; silent, the relay alone, until acks return). An offer refused or unanswered is tried
 * again after 1 s, doubling up to `directRetryMs` (peer-offers.ts); a failed ICE attempt after
 * `directRetryMs`.
 *
 * Role: the agent whose name sorts first is controlling, so both sides agree without a message.
 */
export class PeerLink {
  #state: PeerState = 'idle';
  /** The connecting side wants direct paths; `relay` when every flow pins the relay. */
  wantDirect = true;
  readonly counters = { directSent: 0, directReceived: 0, directRejected: 0, attempts: 0, switches: 0, staleSignals: 0 };
  readonly #direct: DirectPath;
  readonly #offers: OfferSchedule;
  #initiator = false;
  #connectingAt = 0;
  #directAt: number | undefined;
  #lastDiagnosis: PeerDiagnosis | undefined;
  lastActivity = 0;
  /** The gateway's latest refusal code for this peer, for the diagnostics. */
  lastRefusal: string | undefined;

  constructor(private readonly deps: PeerLinkDeps) {
    this.#direct = new DirectPath({ clock: deps.clock, counters: this.counters, touch: () => this.touch(), changed: () => deps.changed(this) });
    this.#offers = new OfferSchedule(deps.clock, deps.directRetryMs);
  }

  get peer(): string {
    return this.deps.peer;
  }

  /** See peer-link-state.ts; moved only through its transition table. */
  get state(): PeerState {
    return this.#state;
  }

  #move(to: PeerState): void {
    this.#state = nextPeerState(this.#state, to);
  }

  get controlling(): boolean {
    return this.deps.self < this.deps.peer;
  }

  /**
   * The state the views show (/api/peers, `sluice status`, `sluice_peer_links`): `peer-offline`
   * while the gateway's latest answer toward the peer said it is not connected, rather than a
   * `connected (relayed)` that carries nothing.
   */
  get shownState(): PeerState | 'peer-offline' {
    return this.lastRefusal === 'peer-offline' && this.state !== 'idle' ? 'peer-offline' : this.state;
  }

  /** True when flows may send direct datagrams now. */
  get directUsable(): boolean {
    return this.#direct.usable;
  }

  /** Direct, but the last ack is late: send on the relay too. */
  get directInDoubt(): boolean {
    return this.#direct.inDoubt;
  }

  /** `direct` when flows use an ICE pair that no relay carries; a TURN pair and the gateway are `relayed`. */
  get path(): PeerPathKind {
    return this.#direct.kind;
  }

  /** Ms from the start of connecting to the first direct path, once there was one. */
  get timeToDirectMs(): number | undefined {
    return this.#directAt === undefined ? undefined : this.#directAt - this.#connectingAt;
  }

  /** The connecting side: start (or restart) an attempt. Idempotent while one runs. */
  connect(): void {
    this.touch();
    const starting = this.state === 'idle';
    if (starting) {
      this.#move('connecting');
      this.#connectingAt = this.deps.clock.now();
      this.#directAt = undefined;
      this.#direct.startKeepalive();
    }
    this.#initiator = true;
    if (this.wantDirect && !this.#direct.attempt) this.#offer();
    if (starting) this.deps.changed(this);
  }

  touch(): void {
    this.lastActivity = this.deps.clock.now();
  }

  /** The relay carries a flow: connected (relayed) if nothing better yet. */
  relayUp(): void {
    // The gateway reached the peer: whatever it refused before (peer-offline) is over.
    this.lastRefusal = undefined;
    if (this.state !== 'connecting') return;
    this.#move('connected');
    this.deps.changed(this);
  }

  /** The gateway refused a SIGNAL or PEER_OPEN toward this peer (peer-offline, not-allowed, ...). */
  signalRefused(code: string): void {
    this.lastRefusal = code;
    const a = this.#direct.attempt;
    // The offer went nowhere (peer offline, not allowed): try again later, sooner at first.
    if (a && !a.answered && this.#initiator) this.#giveUp(a);
    this.deps.changed(this);
  }

  /** Ends an attempt that got no answer and schedules the next one (backoff up to directRetry). */
  #giveUp(a: PeerAttempt): void {
    if (this.#direct.attempt !== a) return;
    this.#lastDiagnosis = this.diagnosis();
    this.#stopAttempt();
    this.#offers.backOff(this.#retryOffer());
  }

  /** The retry to schedule: none unless this side connects and wants a direct path. */
  #retryOffer(): (() => void) | undefined {
    return this.#initiator && this.wantDirect ? () => this.#offer() : undefined;
  }

  /** One SIGNAL from the peer. */
  onSignal(s: PeerSignal): void {
    const a = this.#direct.attempt;
    if (s.kind === 'offer') {
      if (keepsOwnOffer(a, s.attempt, this.#initiator, this.controlling)) return;
      this.#stopAttempt();
      if (this.state === 'idle') {
        this.#move('connecting');
        this.#connectingAt = this.deps.clock.now();
        this.#direct.startKeepalive();
      }
      this.touch();
      const next = this.#newAttempt(s.attempt);
      if (!next) return;
      this.#accept(next, s);
      this.#send({ kind: 'answer', attempt: next.id, ...next.local() });
      void next.ice.gather();
      this.deps.changed(this);
      return;
    }
    if (!a || a.id !== s.attempt) {
      this.counters.staleSignals++;
      return;
    }
    switch (s.kind) {
      case 'answer':
        this.#accept(a, s);
        return;
      case 'candidate':
        a.remoteCandidate(s.candidate);
        return;
      case 'end':
        a.remoteCandidate(null);
        return;
      case 'close':
        this.#lastDiagnosis = this.diagnosis();
        this.#toIdle(false);
        return;
    }
  }

  /** A datagram of the shared socket; true when this link's ICE agent took it. */
  ingress(buf: Buffer, from: StunPeer): boolean {
    return this.#direct.attempt?.ingress(buf, from) ?? false;
  }

  /** Sends one datagram of a flow directly: `tag` as the peer must read it. False when not possible now. */
  sendDirect(tag: number, payload: Buffer): boolean {
    return this.#direct.send(tag, payload);
  }

  /** One flow's tunnel side over the direct path for the native batch (DirectPath.offloadEnd). */
  offloadEnd(flow: DirectFlowEnd): TunnelEnd | null {
    return this.#direct.offloadEnd(flow);
  }

  /** Back to idle: tells the peer, closes ICE. Idempotent. */
  idle(): void {
    this.#toIdle(true);
  }

  #toIdle(tell: boolean): void {
    if (this.state === 'idle') return;
    const a = this.#direct.attempt;
    if (a && tell) this.#send({ kind: 'close', attempt: a.id });
    this.#stopAttempt();
    this.#direct.stopKeepalive();
    this.#offers.cancelRetry();
    this.#initiator = false;
    this.#move('idle');
    this.deps.changed(this);
  }

  /** What the diagnostics views show: the live attempt, or the last one that ended. */
  diagnosis(): PeerDiagnosis {
    const a = this.#direct.attempt;
    const offline = this.lastRefusal === 'peer-offline';
    if (!a) {
      if (offline) return diagnose({ wantDirect: this.wantDirect, state: this.state, ice: undefined, peer: this.deps.peer, peerOffline: true });
      return this.#lastDiagnosis ?? diagnose({ wantDirect: this.wantDirect, state: this.state, ice: undefined });
    }
    return diagnose({ wantDirect: this.wantDirect, state: this.state, ...a.snapshot(), suspect: this.#direct.suspect, peer: this.deps.peer, icePolicy: this.deps.icePolicy, peerOffline: offline });
  }

  #offer(): void {
    this.#offers.cancelRetry();
    const a = this.#newAttempt(randomBytes(8).toString('hex'));
    if (!a) return;
    this.#send({ kind: 'offer', attempt: a.id, ...a.local() });
    this.#offers.awaitAnswer(() => {
      if (!a.answered) this.#giveUp(a);
    });
    void a.ice.gather();
  }

  #newAttempt(id: string): PeerAttempt | undefined {
    const opts = attemptOptions(this.deps, id, this.controlling);
    if (!opts) return undefined;
    this.counters.attempts++;
    const a: PeerAttempt = new PeerAttempt(
      opts,
      {
        signal: (body) => this.#send(body),
        state: (state) => this.#onIceState(a, state),
        data: (tag, payload) => this.#onData(tag, payload),
        ack: () => this.#direct.ack(),
        rejected: () => void this.counters.directRejected++,
      },
    );
    this.#direct.adopt(a);
    return a;
  }

  #accept(a: PeerAttempt, s: { ufrag: string; pwd: string; keyId: number; key: string }): void {
    if (a.answered) return;
    this.#offers.answered();
    this.lastRefusal = undefined;
    a.accept(s);
  }

  #onIceState(a: PeerAttempt, state: string): void {
    if (this.#direct.attempt !== a) return;
    if (state === 'connected') {
      this.#direct.proven();
      this.#move('connected');
      if (this.#directAt === undefined && this.path === 'direct') this.#directAt = this.deps.clock.now();
      this.counters.switches++;
    } else if (state === 'failed') {
      this.#lastDiagnosis = this.diagnosis();
      this.#stopAttempt();
      this.#move('connected');
      this.#offers.retryIn(this.deps.directRetryMs, this.#retryOffer());
    }
    this.deps.changed(this);
  }

  #onData(tag: number, payload: Buffer): void {
    this.counters.directReceived++;
    this.touch();
    if (tag & PEER_TAG_BIT) this.deps.deliverFlow(this, (tag & ~PEER_TAG_BIT) >>> 0, payload);
    else this.deps.deliverExposed(this, tag, payload);
  }

  #stopAttempt(): void {
    const a = this.#direct.drop();
    if (!a) return;
    this.#offers.cancelAnswer();
    a.close();
  }

  #send(s: PeerSignalBody): void {
    this.deps.signal(encodePeerSignal(s));
  }
}
