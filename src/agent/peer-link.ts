import { randomBytes, randomInt } from 'node:crypto';
import type { Clock, Timer } from '../core/clock.js';
import { IceAgent, type IceTiming } from '../ice/agent.js';
import type { IceSocket } from '../ice/bases.js';
import { parseCandidate, formatCandidate, type IceCandidate } from '../ice/candidate.js';
import type { StunPeer } from '../ice/stun-transaction.js';
import type { TurnServerConfig } from '../turn/turn-client.js';
import { classifyPeer } from '../udpexposer/peer-policy.js';
import { DatagramOpener, DatagramSealer, PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { CandidateClass } from '../config/gateway-schema.js';
import { diagnose, type PeerDiagnosis } from './peer-diagnosis.js';
import { encodePeerSignal, type PeerSignal, type PeerSignalBody } from './peer-signal.js';

export type PeerState = 'idle' | 'connecting' | 'connected';
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
  /** Sends a SIGNAL to the peer; false when the control channel is down. */
  readonly signal: (payload: Buffer) => boolean;
  /** A direct datagram for one of this agent's exposed services (connectee tag `tag`). */
  readonly deliverExposed: (link: PeerLink, tag: number, payload: Buffer) => void;
  /** A direct datagram answering one of this agent's flows (the peer's connectee tag). */
  readonly deliverFlow: (link: PeerLink, peerTag: number, payload: Buffer) => void;
  /** State, path or reason changed. */
  readonly changed: (link: PeerLink) => void;
}

/** One ICE attempt: its id, our ICE agent, and the keys of the direct path. */
interface Attempt {
  readonly id: string;
  readonly ice: IceAgent;
  readonly ingress: (buf: Buffer, from: StunPeer) => boolean;
  readonly keyId: number;
  readonly key: Buffer;
  readonly opener: DatagramOpener;
  sealer: DatagramSealer | undefined;
  readonly skipped: string[];
  readonly startedAt: number;
  /** Gathering finished and no STUN server failed: a missing srflx candidate means no NAT. */
  stunAnswered: boolean;
}

/**
 * The path to one other agent (docs/connect.md): relayed through the gateway at once, direct once
 * ICE (on the agent's own gateway socket) selects a pair. Direct datagrams are tunnel datagrams
 * sealed with keys the two agents exchanged in the offer and answer (ChaCha20-Poly1305, replay
 * window), carried by the ICE channel. While direct, each side sends a sealed keepalive every
 * DIRECT_KEEPALIVE_MS and the other acks it; DIRECT_SILENCE_MS without an ack sends traffic back to
 * the relay until acks return (a NAT that lost its mapping, a dead path). ICE failure leaves the
 * link relayed, and the connecting side tries again every `directRetryMs`.
 *
 * Role: the agent whose name sorts first is controlling, so both sides agree without a message.
 */
export class PeerLink {
  state: PeerState = 'idle';
  /** The connecting side wants direct paths; `relay` when every flow pins the relay. */
  wantDirect = true;
  readonly counters = { directSent: 0, directReceived: 0, directRejected: 0, attempts: 0, switches: 0, staleSignals: 0 };
  #attempt: Attempt | undefined;
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

  get controlling(): boolean {
    return this.deps.self < this.deps.peer;
  }

  /** True when flows may send direct datagrams now. */
  get directUsable(): boolean {
    const a = this.#attempt;
    return a !== undefined && a.sealer !== undefined && a.ice.state === 'connected' && !this.#suspect;
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
      this.state = 'connecting';
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
    if (this.state !== 'connecting') return;
    this.state = 'connected';
    this.deps.changed(this);
  }

  /** The gateway refused a SIGNAL or PEER_OPEN toward this peer (peer-offline, not-allowed, ...). */
  signalRefused(code: string): void {
    this.lastRefusal = code;
    const a = this.#attempt;
    // The offer went nowhere (peer offline, not allowed): try again later, sooner at first.
    if (a && a.sealer === undefined && this.#initiator) this.#giveUp(a);
    this.deps.changed(this);
  }

  /** Ends an attempt that got no answer and schedules the next one (backoff up to directRetry). */
  #giveUp(a: Attempt): void {
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
      if (a && a.sealer === undefined && this.#initiator && this.controlling && a.id !== s.attempt) return;
      this.#stopAttempt();
      if (this.state === 'idle') {
        this.state = 'connecting';
        this.#connectingAt = this.deps.clock.now();
        this.#startTimer();
      }
      this.touch();
      const next = this.#newAttempt(s.attempt);
      if (!next) return;
      this.#accept(next, s);
      this.#send({ kind: 'answer', attempt: next.id, ...next.ice.localCredentials, keyId: next.keyId, key: next.key.toString('base64') });
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
      case 'candidate': {
        const c = parseCandidate(s.candidate);
        if (typeof c === 'string' || !this.#allowed(a, c.type, c.address, c.port)) return;
        a.ice.addRemoteCandidate(c);
        return;
      }
      case 'end':
        a.ice.addRemoteCandidate(null);
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
    const a = this.#attempt;
    if (!a?.sealer || !this.directUsable) return false;
    let sealed: Buffer;
    try {
      sealed = a.sealer.sealData(tag, payload);
    } catch {
      return false;
    }
    if (!a.ice.channel.send(sealed)) return false;
    this.counters.directSent++;
    return true;
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
    this.state = 'idle';
    this.deps.changed(this);
  }

  /** What the diagnostics views show: the live attempt, or the last one that ended. */
  diagnosis(): PeerDiagnosis {
    const a = this.#attempt;
    if (!a) return this.#lastDiagnosis ?? diagnose({ wantDirect: this.wantDirect, state: this.state, ice: undefined });
    return diagnose({
      wantDirect: this.wantDirect,
      state: this.state,
      ice: { state: a.ice.state, local: a.ice.localCandidates, remote: a.ice.remoteCandidates, pairs: a.ice.pairs, selected: a.ice.selectedPair },
      skipped: a.skipped,
      suspect: this.#suspect,
      keys: a.sealer !== undefined,
      stunAnswered: a.stunAnswered,
      peer: this.deps.peer,
      icePolicy: this.deps.icePolicy,
    });
  }

  #offer(): void {
    this.#retry?.cancel();
    this.#retry = undefined;
    const a = this.#newAttempt(randomBytes(8).toString('hex'));
    if (!a) return;
    this.#send({ kind: 'offer', attempt: a.id, ...a.ice.localCredentials, keyId: a.keyId, key: a.key.toString('base64') });
    this.#answerTimer?.cancel();
    this.#answerTimer = this.deps.clock.setTimeout(() => {
      if (a.sealer === undefined) this.#giveUp(a);
    }, ANSWER_TIMEOUT_MS);
    void a.ice.gather();
  }

  #newAttempt(id: string): Attempt | undefined {
    const socket = this.deps.socket();
    if (!socket) return undefined;
    this.counters.attempts++;
    const skipped: string[] = [];
    const ice = new IceAgent({
      role: this.controlling ? 'controlling' : 'controlled',
      clock: this.deps.clock,
      stunServers: this.deps.stunServers(),
      turnServers: this.deps.turnServers,
      policy: this.deps.icePolicy,
      timing: this.deps.iceTiming,
      // Peer-reflexive addresses (learned from checks) pass the same rule as signalled ones.
      remoteAllowed: (address, port) => this.#allowed({ skipped }, 'prflx', address, port),
    });
    const key = randomBytes(32);
    const keyId = randomInt(1, 0xffff_ffff);
    const a: Attempt = {
      id, ice, ingress: ice.addSocket(socket), keyId, key,
      opener: new DatagramOpener({ key, direction: this.controlling ? 'gateway-to-agent' : 'agent-to-gateway', keyId }),
      sealer: undefined, skipped, startedAt: this.deps.clock.now(), stunAnswered: false,
    };
    this.#attempt = a;
    ice.on('candidate', (c: IceCandidate) => this.#send({ kind: 'candidate', attempt: id, candidate: formatCandidate(c) }));
    ice.on('gathering-complete', (e) => {
      a.stunAnswered = !e.errors.some((err) => err.name === 'StunTimeoutError' || (err as { code?: string }).code === 'SLUICE_ERR_STUN_TIMEOUT');
      this.#send({ kind: 'end', attempt: id });
    });
    ice.on('state', (state) => this.#onIceState(a, state));
    ice.channel.onDatagram((buf) => this.#onDirect(a, buf));
    return a;
  }

  /** `peerCandidates`: may this agent send to a peer's address? Refusals are kept for the diagnosis. */
  #allowed(a: { readonly skipped: string[] }, type: string, address: string, port: number): boolean {
    const cls = classifyPeer(address, port);
    if ((this.deps.candidateClasses as readonly string[]).includes(cls)) return true;
    const text = `${type} ${address}:${port} (${cls})`;
    if (a.skipped.length < 16 && !a.skipped.includes(text)) a.skipped.push(text);
    return false;
  }

  #accept(a: Attempt, s: { ufrag: string; pwd: string; keyId: number; key: string }): void {
    if (a.sealer) return;
    this.#retryDelay = FIRST_RETRY_MS;
    this.lastRefusal = undefined;
    a.sealer = new DatagramSealer({ key: Buffer.from(s.key, 'base64'), direction: this.controlling ? 'agent-to-gateway' : 'gateway-to-agent', peerKeyId: s.keyId });
    a.ice.setRemoteCredentials({ ufrag: s.ufrag, pwd: s.pwd });
  }

  #onIceState(a: Attempt, state: string): void {
    if (this.#attempt !== a) return;
    if (state === 'connected') {
      this.#lastAck = this.deps.clock.now();
      this.#suspect = false;
      this.state = 'connected';
      if (this.#directAt === undefined && this.path === 'direct') this.#directAt = this.deps.clock.now();
      this.counters.switches++;
    } else if (state === 'failed') {
      this.#lastDiagnosis = this.diagnosis();
      this.#stopAttempt();
      this.state = 'connected';
      this.#scheduleRetry(this.deps.directRetryMs);
    }
    this.deps.changed(this);
  }

  #onDirect(a: Attempt, buf: Buffer): void {
    const r = a.opener.open(buf);
    if (!r.ok) {
      this.counters.directRejected++;
      return;
    }
    const d = r.datagram;
    if (d.kind === 'keepalive') {
      if (a.sealer) a.ice.channel.send(a.sealer.sealKeepaliveAck(d.counter));
      return;
    }
    if (d.kind === 'keepalive-ack') {
      this.#lastAck = this.deps.clock.now();
      if (this.#suspect) {
        this.#suspect = false;
        this.counters.switches++;
        this.deps.changed(this);
      }
      return;
    }
    if (d.kind !== 'data') return;
    this.counters.directReceived++;
    this.touch();
    if (d.tag & PEER_TAG_BIT) this.deps.deliverFlow(this, (d.tag & ~PEER_TAG_BIT) >>> 0, d.payload);
    else this.deps.deliverExposed(this, d.tag, d.payload);
  }

  /** Keepalives on the direct path while it is up, and the silence rule. */
  #startTimer(): void {
    this.#timer?.cancel();
    this.#timer = this.deps.clock.setInterval(() => {
      const a = this.#attempt;
      if (!a?.sealer || a.ice.state !== 'connected') return;
      this.#keepaliveCounter = (this.#keepaliveCounter + 1) >>> 0;
      a.ice.channel.send(a.sealer.sealKeepalive(this.#keepaliveCounter));
      if (!this.#suspect && this.deps.clock.now() - this.#lastAck > DIRECT_SILENCE_MS) {
        this.#suspect = true;
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
    a.ice.removeAllListeners();
    a.ice.channel.close();
    void a.ice.close();
  }

  #send(s: PeerSignalBody): void {
    this.deps.signal(encodePeerSignal(s));
  }
}
