import { EventEmitter } from 'node:events';
import type { Clock } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { DecodedStunMessage } from '../protocol/stun/index.js';
import {
  DEFAULT_ICE_TIMING, type DatagramIngress, type IceAgentEvents, type IceAgentOptions, type IceTiming,
} from './agent-options.js';
import type { IceAgentState } from './agent-state.js';
import type { IceSocket } from './bases.js';
import type { IceCandidate } from './candidate.js';
import { IceDatagramChannel, type SelectedPairInfo } from './channel.js';
import type { IceRole } from './check-message.js';
import { Checker } from './checker.js';
import type { CandidatePair, IceBase } from './checklist.js';
import { IceConnectivity } from './connectivity.js';
import { credentialsProblem, randomCredentials, randomTieBreaker, type IceCredentials } from './credentials.js';
import { decodeBinding, iceDatagramKind, samePeer } from './datagram-kind.js';
import { Gatherer } from './gatherer.js';
import type { RelayTransport } from '../turn/relay-transport.js';
import { takeRemoteCandidate } from './remote-candidates.js';
import { answerCheck } from './responder.js';
import { IceSession } from './session.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';

export type { DatagramIngress, IceAgentEvents, IceAgentOptions, IceTiming } from './agent-options.js';
export { DEFAULT_ICE_TIMING } from './agent-options.js';

/**
 * An ICE agent (RFC 8445, the part a UDP datagram path needs: one component, full ICE, regular
 * nomination) with RFC 7675 consent freshness. It owns no socket: it sends through the sockets
 * and relays it is given and takes the datagrams their owners hand it, so it can run on a socket
 * shared with other traffic, and a relay from outside (the gateway's) can be a candidate.
 *
 * Use: addSocket() for each socket (feed its datagrams to the returned function); listen for
 * 'candidate' and 'gathering-complete' and call gather(); send the candidates, end-of-candidates
 * and `localCredentials` to the peer; setRemoteCredentials() and addRemoteCandidate() (null =
 * end-of-candidates) with what the peer sends, in any order and at any time (trickle). 'state'
 * reports idle → checking → connected ⇄ disconnected → failed, and closed; `channel` carries
 * datagrams over the selected pair.
 *
 * Contract: single-threaded on the caller's event loop. Events are emitted synchronously from
 * inside the agent; handlers may call any method, close() included. close() before closing the
 * sockets (TURN allocations are deleted through them). Relays given to addRelay() stay the
 * caller's; TURN clients made from `turnServers` are the agent's.
 */
export class IceAgent extends EventEmitter<IceAgentEvents> {
  readonly channel: IceDatagramChannel;
  /** Every answer to a check goes through it: at most 3x the request (core/unverified-reply-guard.ts). */
  readonly replies = new UnverifiedReplyGuard();
  readonly counters = {
    /** Binding requests from addresses `remoteAllowed` refuses: dropped before decoding, never answered. */
    refusedRequests: 0,
    /** ICE data datagrams from an address that is not a remote candidate: left undelivered (never decrypted). */
    unknownDataSources: 0,
  };
  readonly #o: IceAgentOptions;
  readonly #timing: IceTiming;
  readonly #clock: Clock;
  readonly #life = new AbortController();
  readonly #tieBreaker: bigint;
  readonly #gatherer: Gatherer;
  readonly #checker: Checker;
  /** The state, and the pair that carries data (kept across a restart until the new session selects one). */
  readonly #conn: IceConnectivity;
  #role: IceRole;
  #session: IceSession;
  #closing: Promise<void> | undefined;

  constructor(options: IceAgentOptions) {
    super();
    this.#o = options;
    this.#timing = { ...DEFAULT_ICE_TIMING, ...options.timing };
    this.#clock = options.clock;
    this.#role = options.role;
    this.#tieBreaker = options.tieBreaker ?? randomTieBreaker();
    this.#session = new IceSession(checkedCredentials(options.credentials ?? randomCredentials(), 'local'), options.maxPairs ?? 100);
    this.#conn = new IceConnectivity({
      clock: this.#clock, random: options.random ?? Math.random, timing: this.#timing,
      check: (pair) => this.#checker.check(pair, 'consent'),
      stopChecks: () => this.#checker.stop(),
      onState: (to, from) => this.emit('state', to, from),
    });
    this.channel = new IceDatagramChannel({ sendFramed: (b) => this.#sendData(b), selectedPair: () => this.selectedPair });
    this.#gatherer = new Gatherer(
      {
        clock: this.#clock, signal: this.#life.signal, stunServers: options.stunServers ?? [], turnServers: options.turnServers ?? [],
        policy: options.policy ?? 'all', timing: this.#timing.gather,
      },
      {
        onCandidate: (base, c, isBase) => this.#onLocalCandidate(base, c, isBase),
        onComplete: (errors) => this.#onGathered(errors),
        receive: (base, buf, from) => this.#receive(base, buf, from),
        baseLost: (base) => this.#baseLost(base),
      },
    );
    const agent = this;
    this.#checker = new Checker({
      clock: this.#clock, timing: this.#timing, tieBreaker: this.#tieBreaker,
      get session() { return agent.#session; },
      get role() { return agent.#role; },
      get closed() { return agent.#conn.state === 'closed'; },
      switchRole: (r) => this.#switchRole(r),
      localFor: (base, mapped, priority) => this.#gatherer.localFor(base, mapped, priority),
      select: (p) => this.#select(p),
      maybeFail: () => this.#maybeFail(),
    });
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  get state(): IceAgentState {
    return this.#conn.state;
  }

  get role(): IceRole {
    return this.#role;
  }

  get localCredentials(): IceCredentials {
    return this.#session.credentials;
  }

  /** The candidates advertised so far (what 'candidate' events carried). */
  get localCandidates(): IceCandidate[] {
    return this.#gatherer.candidates().filter((c) => this.#advertised(c));
  }

  get remoteCandidates(): IceCandidate[] {
    return [...this.#session.remote.values()];
  }

  /** The check list, highest priority first (live objects: read, do not change). */
  get pairs(): readonly Readonly<CandidatePair>[] {
    return [...this.#session.list.all()];
  }

  get selectedPair(): SelectedPairInfo | undefined {
    return this.#conn.info;
  }

  /** Adds a socket: its host candidate, and srflx and TURN candidates through it once gathering runs. */
  addSocket(socket: IceSocket): DatagramIngress {
    this.#assertOpen();
    return this.#gatherer.addSocket(socket);
  }

  /** Adds a relay from outside (the gateway's, say): its allocation becomes a relayed candidate. The caller keeps owning it. */
  addRelay(relay: RelayTransport): void {
    this.#assertOpen();
    this.#gatherer.addRelay(relay);
  }

  /** Starts gathering on every socket and relay; resolves once all of it has ended ('gathering-complete'). */
  gather(): Promise<void> {
    this.#assertOpen();
    this.#gatherer.start();
    if (this.#gatherer.done) return Promise.resolve();
    return new Promise((resolve) => this.once('gathering-complete', () => resolve()));
  }

  setRemoteCredentials(credentials: IceCredentials): void {
    this.#assertOpen();
    this.#session.remoteCredentials = checkedCredentials(credentials, 'remote');
    if (this.#conn.state === 'idle') this.#conn.startChecking();
    this.#checker.kick();
  }

  /**
   * A candidate from the peer (an IceCandidate or its SDP text); null or undefined is
   * end-of-candidates. Returns false when it is ignored: unparsable, TCP, another component,
   * over the limit, or after close.
   */
  addRemoteCandidate(candidate: IceCandidate | string | null | undefined): boolean {
    const s = this.#session;
    if (this.#conn.state === 'closed') return false;
    if (candidate === null || candidate === undefined) {
      s.remoteEnd = true;
      this.#maybeFail();
      return true;
    }
    const taken = takeRemoteCandidate(s, candidate, this.#o.maxRemoteCandidates ?? 64, this.#role);
    if (taken === 'ignored') return false;
    if (taken === 'known') return true;
    if (taken !== 'upgraded') for (const base of this.#gatherer.bases) this.#pair(base, taken);
    this.#checker.kick();
    return true;
  }

  /**
   * ICE restart (RFC 8445 §9): a new session with new local credentials; the peer's candidates
   * and every pair are forgotten and the local candidates advertised again. Data keeps flowing on
   * the previous pair until the new session selects one. The peer must restart too.
   */
  restart(credentials: IceCredentials = randomCredentials()): void {
    this.#assertOpen();
    const next = new IceSession(checkedCredentials(credentials, 'local'), this.#o.maxPairs ?? 100);
    this.#session.end();
    this.#session = next;
    this.#checker.stop();
    this.#conn.dropConsent();
    this.#gatherer.forgetPeerReflexive();
    if (this.#conn.state !== 'idle') this.#conn.startChecking();
    for (const c of this.localCandidates) this.emit('candidate', c);
    if (this.#gatherer.done) this.emit('gathering-complete', { errors: [...this.#gatherer.errors] });
  }

  /** Stops everything and deletes the TURN allocations the agent made. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#conn.close();
    this.#session.end();
    this.channel.close();
    await this.#gatherer.closeOwned(); // before the lifetime ends: aborting would drop the allocations unannounced
    this.#life.abort();
  }

  // ---- candidates and pairs

  #advertised(c: IceCandidate): boolean {
    return c.type !== 'prflx' && (this.#o.policy !== 'relay' || c.type === 'relay');
  }

  #onLocalCandidate(base: IceBase, c: IceCandidate, isBase: boolean): void {
    if (this.#conn.state === 'closed') return;
    if (this.#advertised(c)) this.emit('candidate', c);
    if (isBase) for (const r of this.#session.remote.values()) this.#pair(base, r);
  }

  #onGathered(errors: readonly Error[]): void {
    if (this.#conn.state === 'closed') return;
    this.emit('gathering-complete', { errors });
    this.#maybeFail();
  }

  /** Pairs a base with a remote candidate. srflx candidates are never paired: their base is (§6.1.2.4). */
  #pair(base: IceBase, remote: IceCandidate): CandidatePair | undefined {
    if (base.address.family !== remote.family || !this.#gatherer.has(base)) return undefined;
    if (base.kind === 'socket' && this.#o.policy === 'relay') return undefined;
    if (this.#o.remoteAllowed && !this.#o.remoteAllowed(remote.address, remote.port)) return undefined;
    const pair = this.#session.list.add(base, remote, this.#role);
    if (pair) this.#checker.kick();
    return pair;
  }

  /** A relay allocation is gone (its owner reports why): its pairs fail, and the path if it was selected. */
  #baseLost(base: IceBase): void {
    if (this.#conn.state === 'closed') return;
    this.#session.list.failBase(base);
    if (this.#conn.pair?.base === base) this.#conn.fail();
    else this.#maybeFail();
  }

  #switchRole(role: IceRole): void {
    this.#role = role;
    this.#session.list.reprioritise(role);
  }

  // ---- receiving

  #receive(base: IceBase, buf: Buffer, from: StunPeer): boolean {
    if (this.#conn.state === 'closed') return false;
    const kind = iceDatagramKind(buf);
    if (kind === 'ice-data') return this.#receiveData(buf, from);
    if (kind === 'other') return false;
    // A request from an address the policy refuses gets no work at all: no decoding, no HMAC, no
    // answer, no peer-reflexive candidate (so none of its later data is delivered either).
    if (kind === 'stun-request' && this.#o.remoteAllowed && !this.#o.remoteAllowed(from.address, from.port)) {
      this.counters.refusedRequests++;
      return false;
    }
    const msg = decodeBinding(buf);
    if (!msg) return false;
    if (msg.cls === 'request') return this.#answer(base, msg, from);
    if (msg.cls === 'indication') return this.#session.remoteAt(from) !== undefined; // keepalive (§11)
    return base.table.handleResponse(msg, from);
  }

  #answer(base: IceBase, msg: DecodedStunMessage, from: StunPeer): boolean {
    if (base.kind === 'socket' && this.#o.policy === 'relay') return false;
    const agent = this;
    return answerCheck(
      {
        get session() { return agent.#session; },
        get role() { return agent.#role; },
        tieBreaker: this.#tieBreaker,
        maxRemoteCandidates: this.#o.maxRemoteCandidates ?? 64,
        switchRole: (r) => this.#switchRole(r),
        pair: (b, r) => this.#session.list.get(b, r) ?? this.#pair(b, r),
        select: (p) => this.#select(p),
        kick: () => this.#checker.kick(),
        replies: this.replies,
      },
      base, msg, from,
    );
  }

  /** From any candidate of the peer: it may select a pair before this side does. */
  #receiveData(buf: Buffer, from: StunPeer): boolean {
    const p = this.#conn.pair;
    const known = this.#session.remoteAt(from) ?? (p && samePeer(p.remote, from) ? p.remote : undefined);
    if (!known) {
      this.counters.unknownDataSources++;
      return false;
    }
    this.channel.deliver(buf.subarray(1));
    return true;
  }

  #sendData(framed: Buffer): boolean {
    const p = this.#conn.pair;
    const state = this.#conn.state;
    if (!p || state === 'closed' || state === 'failed') return false;
    p.base.send(framed, p.remote);
    return true;
  }

  // ---- selection

  #select(pair: CandidatePair): void {
    const s = this.#session;
    if (s.selected || this.#conn.state === 'closed') return;
    s.selected = pair;
    s.nominating = undefined;
    this.#conn.select(pair);
    this.emit('selected-pair', this.selectedPair!);
  }

  /** Checking has run out: everything gathered and signalled, and every pair failed. */
  #maybeFail(): void {
    const s = this.#session;
    if (this.#conn.state !== 'checking' || s.selected || s.nominating || !s.remoteEnd || !this.#gatherer.done) return;
    if (s.list.pending || s.list.all().some((p) => p.state === 'succeeded')) return;
    this.#conn.fail();
  }

  #assertOpen(): void {
    if (this.#conn.state === 'closed') throw new SluiceError('SLUICE_ERR_CLOSED', 'ICE agent is closed');
  }
}

function checkedCredentials(c: IceCredentials, side: 'local' | 'remote'): IceCredentials {
  const problem = credentialsProblem(c);
  if (problem) throw new SluiceError('SLUICE_ERR_ICE_STATE', `${side} ICE credentials: ${problem}`);
  return c;
}
