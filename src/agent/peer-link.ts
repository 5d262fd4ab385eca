import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../core/clock.js';
import type { IceTiming } from '../ice/agent.js';
import type { IceSocket } from '../ice/bases.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import type { TurnServerConfig } from '../turn/turn-client.js';
import { PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { CandidateClass } from '../config/expose-config.js';
import type { TunnelEnd } from '../datapath/offload.js';
import { PeerAttempt, type AttemptOptions, type DirectFlowEnd } from './peer-attempt.js';
import { diagnose, type PeerDiagnosis } from './peer-diagnosis.js';
import { encodePeerSignal, type PeerSignal, type PeerSignalBody } from './peer-signal.js';
import { nextPeerState, type PeerState } from './peer-link-state.js';

export type PeerPathKind = 'direct' | 'relayed';

/**
 * How often the direct path is proven while it is up; after DIRECT_DOUBT_MS without an ack, flows
 * send each datagram on both paths (UDP allows a duplicate, not a loss); after DIRECT_SILENCE_MS
 * they use the relay alone until acks return.
 */
export const DIRECT_KEEPALIVE_MS = 250;
/** An offer nobody answered within this is given up (the peer offline, or an agent without peers). */
export const ANSWER_TIMEOUT_MS = 10_000;
/** First wait before offering again after a refused or unanswered offer; doubles up to directRetry. */
export const FIRST_RETRY_MS = 1000;
export const DIRECT_DOUBT_MS = 600;
export const DIRECT_SILENCE_MS = 1000;

export interface PeerLinkDeps {
  readonly self: string;
  readonly peer: string;
  readonly clock: Clock;
  readonly stunServers: () => readonly StunPeer[];
  readonly turnServers: readonly TurnServerConfig[];
  readonly candidateClasses: readonly CandidateClass[];
  readonly icePolicy: 'all' | 'relay';
  readonly directRetryMs: number;
  readonly iceTiming?: Partial<IceTiming>;
  /** The agent's gateway socket, once it is bound; undefined before. */
  readonly socket: () => IceSocket | undefined;
  /** Makes the opener of a direct path's key (the gateway socket's datapath decides where it runs). */
  readonly opener?: AttemptOptions['opener'];
  /** Makes the sealer of the peer's key (likewise). */
  readonly sealer?: AttemptOptions['sealer'];
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
 * direct, each side sends a sealed keepalive every DIRECT_KEEPALIVE_MS and the other acks it; with
 * no ack for DIRECT_DOUBT_MS flows send on both paths, for DIRECT_SILENCE_MS on the relay alone,
 * until acks return (a NAT that lost its mapping, a dead path). An offer refused or unanswered is
 * tried again after 1 s, doubling up to `directRetryMs`; a failed ICE attempt after `directRetryMs`.
 *
 * Role: the agent whose name sorts first is controlling, so both sides agree without a message.
 */
export class PeerLink {
  #state: PeerState = 'idle';
  /** The connecting side wants direct paths; `relay` when every flow pins the relay. */
  wantDirect = true;
  readonly counters = { directSent: 0, directReceived: 0, directRejected: 0, attempts: 0, switches: 0, staleSignals: 0 };
  #attempt: PeerAttempt | undefined;
  #initiator = false;
  #suspect = false;
  #lastAck = 0;
  #keepaliveCounter = 0;
  #timer: Timer | undefined;
  #retry: Timer | undefined;
  #answerTimer: Timer | undefined;
  #retryDelay = FIRST_RETRY_MS;
  #connectingAt = 0;
  #directAt: number | undefined;
  #lastDiagnosis: PeerDiagnosis | undefined;
  lastActivity = 0;
  /** The gateway's latest refusal code for this peer, for the diagnostics. */
  lastRefusal: string | undefined;

  constructor(private readonly deps: PeerLinkDeps) {}

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
    return this.#attempt?.connected === true && !this.#suspect;
  }

  /** Direct, but the last ack is late: send on the relay too. */
  get directInDoubt(): boolean {
    return this.deps.clock.now() - this.#lastAck > DIRECT_DOUBT_MS;
  }

  /** `direct` when flows use an ICE pair that no relay carries; a TURN pair and the gateway are `relayed`. */
  get path(): PeerPathKind {
    return this.directUsable && this.#attempt?.ice.selectedPair?.relayed !== true ? 'direct' : 'relayed';
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
      this.#startTimer();
    }
    this.#initiator = true;
    if (this.wantDirect && !this.#attempt) this.#offer();
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
    const a = this.#attempt;
    // The offer went nowhere (peer offline, not allowed): try again later, sooner at first.
    if (a && !a.answered && this.#initiator) this.#giveUp(a);
    this.deps.changed(this);
  }

  /** Ends an attempt that got no answer and schedules the next one (backoff up to directRetry). */
  #giveUp(a: PeerAttempt): void {
    if (this.#attempt !== a) return;
    this.#lastDiagnosis = this.diagnosis();
    this.#stopAttempt();
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(this.#retryDelay * 2, this.deps.directRetryMs);
    this.#scheduleRetry(delay);
  }

  #scheduleRetry(delayMs: number): void {
    this.#retry?.cancel();
    this.#retry = this.#initiator && this.wantDirect ? this.deps.clock.setTimeout(() => this.#offer(), delayMs) : undefined;
  }

  /** One SIGNAL from the peer. */
  onSignal(s: PeerSignal): void {
    const a = this.#attempt;
    if (s.kind === 'offer') {
      // Glare: both sides offered at once; the controlling side's offer wins.
      if (a && !a.answered && this.#initiator && this.controlling && a.id !== s.attempt) return;
      this.#stopAttempt();
      if (this.state === 'idle') {
        this.#move('connecting');
        this.#connectingAt = this.deps.clock.now();
        this.#startTimer();
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
    return this.#attempt?.ingress(buf, from) ?? false;
  }

  /** Sends one datagram of a flow directly: `tag` as the peer must read it. False when not possible now. */
  sendDirect(tag: number, payload: Buffer): boolean {
    if (!this.directUsable || !this.#attempt!.send(tag, payload)) return false;
    this.counters.directSent++;
    return true;
  }

  /**
   * One flow's tunnel side over the direct path for the native batch, while that path is usable
   * and not in doubt (in doubt, JavaScript sends on both paths). The batch's datagrams count as
   * this link's direct ones and as activity. The suspect rule closes it at once; the doubt rule
   * (time based) is checked by `valid` on the session table's sweep.
   */
  offloadEnd(flow: DirectFlowEnd): TunnelEnd | null {
    const a = this.#attempt;
    if (!a || !this.directUsable || this.directInDoubt) return null;
    return a.offloadEnd({
      ...flow,
      forwarded: (to, from) => {
        this.counters.directSent += to;
        this.counters.directReceived += from;
        if (to + from > 0) this.touch();
        flow.forwarded(to, from);
      },
      valid: () => this.#attempt === a && this.directUsable && !this.directInDoubt && flow.valid(),
    });
  }

  /** Back to idle: tells the peer, closes ICE. Idempotent. */
  idle(): void {
    this.#toIdle(true);
  }

  #toIdle(tell: boolean): void {
    if (this.state === 'idle') return;
    const a = this.#attempt;
    if (a && tell) this.#send({ kind: 'close', attempt: a.id });
    this.#stopAttempt();
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#retry?.cancel();
    this.#retry = undefined;
    this.#initiator = false;
    this.#move('idle');
    this.deps.changed(this);
  }

  /** What the diagnostics views show: the live attempt, or the last one that ended. */
  diagnosis(): PeerDiagnosis {
    const a = this.#attempt;
    const offline = this.lastRefusal === 'peer-offline';
    if (!a) {
      if (offline) return diagnose({ wantDirect: this.wantDirect, state: this.state, ice: undefined, peer: this.deps.peer, peerOffline: true });
      return this.#lastDiagnosis ?? diagnose({ wantDirect: this.wantDirect, state: this.state, ice: undefined });
    }
    return diagnose({ wantDirect: this.wantDirect, state: this.state, ...a.snapshot(), suspect: this.#suspect, peer: this.deps.peer, icePolicy: this.deps.icePolicy, peerOffline: offline });
  }

  #offer(): void {
    this.#retry?.cancel();
    this.#retry = undefined;
    const a = this.#newAttempt(randomBytes(8).toString('hex'));
    if (!a) return;
    this.#send({ kind: 'offer', attempt: a.id, ...a.local() });
    this.#answerTimer?.cancel();
    this.#answerTimer = this.deps.clock.setTimeout(() => {
      if (!a.answered) this.#giveUp(a);
    }, ANSWER_TIMEOUT_MS);
    void a.ice.gather();
  }

  #newAttempt(id: string): PeerAttempt | undefined {
    const socket = this.deps.socket();
    if (!socket) return undefined;
    this.counters.attempts++;
    const d = this.deps;
    const a: PeerAttempt = new PeerAttempt(
      {
        id, controlling: this.controlling, clock: d.clock, socket, stunServers: d.stunServers(), turnServers: d.turnServers,
        icePolicy: d.icePolicy, iceTiming: d.iceTiming, candidateClasses: d.candidateClasses, opener: d.opener, sealer: d.sealer,
      },
      {
        signal: (body) => this.#send(body),
        state: (state) => this.#onIceState(a, state),
        data: (tag, payload) => this.#onData(tag, payload),
        ack: () => this.#onAck(),
        rejected: () => void this.counters.directRejected++,
      },
    );
    this.#attempt = a;
    return a;
  }

  #accept(a: PeerAttempt, s: { ufrag: string; pwd: string; keyId: number; key: string }): void {
    if (a.answered) return;
    this.#retryDelay = FIRST_RETRY_MS;
    this.lastRefusal = undefined;
    a.accept(s);
  }

  #onIceState(a: PeerAttempt, state: string): void {
    if (this.#attempt !== a) return;
    if (state === 'connected') {
      this.#lastAck = this.deps.clock.now();
      this.#suspect = false;
      this.#move('connected');
      if (this.#directAt === undefined && this.path === 'direct') this.#directAt = this.deps.clock.now();
      this.counters.switches++;
    } else if (state === 'failed') {
      this.#lastDiagnosis = this.diagnosis();
      this.#stopAttempt();
      this.#move('connected');
      this.#scheduleRetry(this.deps.directRetryMs);
    }
    this.deps.changed(this);
  }

  #onAck(): void {
    this.#lastAck = this.deps.clock.now();
    if (!this.#suspect) return;
    this.#suspect = false;
    this.counters.switches++;
    this.deps.changed(this);
  }

  #onData(tag: number, payload: Buffer): void {
    this.counters.directReceived++;
    this.touch();
    if (tag & PEER_TAG_BIT) this.deps.deliverFlow(this, (tag & ~PEER_TAG_BIT) >>> 0, payload);
    else this.deps.deliverExposed(this, tag, payload);
  }

  /** Keepalives on the direct path while it is up, and the silence rule. */
  #startTimer(): void {
    this.#timer?.cancel();
    this.#timer = this.deps.clock.setInterval(() => {
      const a = this.#attempt;
      if (!a?.connected) return;
      this.#keepaliveCounter = (this.#keepaliveCounter + 1) >>> 0;
      a.keepalive(this.#keepaliveCounter);
      if (!this.#suspect && this.deps.clock.now() - this.#lastAck > DIRECT_SILENCE_MS) {
        this.#suspect = true;
        a.offloads.closeAll();
        this.counters.switches++;
        this.deps.changed(this);
      }
    }, DIRECT_KEEPALIVE_MS);
  }

  #stopAttempt(): void {
    const a = this.#attempt;
    if (!a) return;
    this.#attempt = undefined;
    this.#suspect = false;
    this.#answerTimer?.cancel();
    this.#answerTimer = undefined;
    a.close();
  }

  #send(s: PeerSignalBody): void {
    this.deps.signal(encodePeerSignal(s));
  }
}
