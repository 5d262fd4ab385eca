import { EventEmitter } from 'node:events';
import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import {
  ErrorCode, StunErrorCode, StunMethod, XorMappedAddress, decodeStunDatagram, getAttribute, type DecodedStunMessage,
} from '../protocol/stun/index.js';
import { TurnClient, type TurnServerConfig } from '../turn/turn-client.js';
import { canMove, type IceAgentState } from './agent-state.js';
import { relayBase, socketBase, srflxCandidate, type IceSocket } from './bases.js';
import { addressKey, foundationOf, parseCandidate, type IceCandidate } from './candidate.js';
import { ICE_DATA_PREFIX, IceDatagramChannel, type SelectedPairInfo } from './channel.js';
import {
  checkResponseAuthentic, encodeCheckError, encodeCheckRequest, encodeCheckSuccess, readCheckRequest, type IceRole,
} from './check-message.js';
import { CheckList, pairFoundation, transition, type CandidatePair, type IceBase } from './checklist.js';
import { ConsentFreshness, RFC7675_TIMING, type ConsentStatus } from './consent.js';
import { credentialsProblem, randomCredentials, randomTieBreaker, type IceCredentials } from './credentials.js';
import { GATHER_TIMING, queryServerReflexive } from './gathering.js';
import { DEFAULT_NOMINATION_TIMING, decideNomination, isRelayed } from './nomination.js';
import { candidatePriority } from './priority.js';
import type { RelayAllocation, RelayTransport } from './relay-transport.js';
import type { StunPeer, StunRetransmitTiming } from './stun-transaction.js';

/**
 * An ICE agent (RFC 8445, the part a UDP datagram path needs: one component, full ICE, regular
 * nomination) with RFC 7675 consent freshness. It owns no socket: it sends through the sockets
 * and relays it is given and takes the datagrams their owners hand it, so it can run on a socket
 * shared with other traffic, and a relay from outside (the gateway's) can be a candidate.
 *
 * Use: addSocket() for each socket (feed its datagrams to the returned function), gather(),
 * send every 'candidate' and then end-of-candidates to the peer with the local credentials;
 * setRemoteCredentials() and addRemoteCandidate() (null = end-of-candidates) with what the peer
 * sends, at any time (trickle). 'state' events report idle → checking → connected ⇄
 * disconnected → failed / closed; `channel` carries datagrams over the selected pair.
 *
 * Contract: everything runs on the caller's event loop, nothing is re-entrant. close() before
 * closing the sockets (TURN allocations are deleted through them). Relays passed to addRelay()
 * stay the caller's; TURN clients made from `turnServers` are the agent's and closed with it.
 */

export interface IceTiming {
  /** Ta: one check every Ta ms (RFC 8445 §14.2: 50 ms). */
  readonly taMs: number;
  /** Retransmission of checks; a pair fails when its check times out (default 0, 0.5, 1.5, 3.5, 7.5 s; failed at 9.5 s). */
  readonly check: StunRetransmitTiming;
  /** Retransmission of Binding requests to STUN servers while gathering. */
  readonly gather: StunRetransmitTiming;
  readonly directNominationDelayMs: number;
  readonly relayNominationDelayMs: number;
  /** RFC 7675: check every intervalMs (randomised 0.8-1.2×), stale after staleMs, expired after expireMs. */
  readonly consentIntervalMs: number;
  readonly consentStaleMs: number;
  readonly consentExpireMs: number;
  /** From `checking` to `failed` when no pair gets selected. */
  readonly connectTimeoutMs: number;
}

export const DEFAULT_ICE_TIMING: IceTiming = Object.freeze({
  taMs: 50,
  check: { rtoMs: 500, maxTransmissions: 5, lastWaitFactor: 4 },
  gather: GATHER_TIMING,
  directNominationDelayMs: DEFAULT_NOMINATION_TIMING.directDelayMs,
  relayNominationDelayMs: DEFAULT_NOMINATION_TIMING.relayDelayMs,
  consentIntervalMs: RFC7675_TIMING.intervalMs,
  consentStaleMs: RFC7675_TIMING.staleMs,
  consentExpireMs: RFC7675_TIMING.expireMs,
  connectTimeoutMs: 30_000,
});

/** Consent checks give up before the next one is due (sends at 0, 0.5, 1.5 s; lost at 3.5 s). */
const CONSENT_CHECK_TIMING: StunRetransmitTiming = { rtoMs: 500, maxTransmissions: 3, lastWaitFactor: 4 };

export interface IceAgentOptions {
  readonly role: IceRole;
  readonly clock: Clock;
  /** Default: random (8-char ufrag, 24-char pwd). */
  readonly credentials?: IceCredentials;
  readonly tieBreaker?: bigint;
  readonly stunServers?: readonly StunPeer[];
  /** A TURN allocation per server on every socket; the agent owns these clients. */
  readonly turnServers?: readonly TurnServerConfig[];
  /** 'relay': only relayed candidates are gathered, advertised and paired (WebRTC's iceTransportPolicy). */
  readonly policy?: 'all' | 'relay';
  readonly timing?: Partial<IceTiming>;
  /** [0, 1): consent jitter. Default Math.random. */
  readonly random?: () => number;
  readonly maxRemoteCandidates?: number;
  readonly maxPairs?: number;
  /** Aborting closes the agent. */
  readonly signal?: AbortSignal;
}

export interface IceAgentEvents {
  /** A local candidate to send to the peer (host, srflx, relay; peer-reflexive ones are never signalled). */
  candidate: [IceCandidate];
  /** Local end-of-candidates; `errors` lists what failed (a silent STUN server, a refused allocation). */
  'gathering-complete': [{ errors: readonly Error[] }];
  state: [IceAgentState, IceAgentState];
  'selected-pair': [SelectedPairInfo];
}

/** Takes one datagram received on a socket; true when the agent used it. */
export type DatagramIngress = (buf: Buffer, from: StunPeer) => boolean;

type CheckKind = 'ordinary' | 'nominate' | 'consent';

export class IceAgent extends EventEmitter<IceAgentEvents> {
  readonly channel: IceDatagramChannel;
  readonly #o: IceAgentOptions;
  readonly #t: IceTiming;
  readonly #clock: Clock;
  readonly #life = new AbortController();
  readonly #tieBreaker: bigint;
  readonly #list: CheckList;
  readonly #bases: IceBase[] = [];
  readonly #sockets: { socket: IceSocket; base: IceBase; turns: TurnClient[] }[] = [];
  readonly #relays: RelayTransport[] = [];
  readonly #owned: TurnClient[] = [];
  /** Local candidates by address (host, srflx, relay, prflx), with their base. */
  readonly #local = new Map<string, { candidate: IceCandidate; base: IceBase }>();
  readonly #remote = new Map<string, IceCandidate>();
  readonly #gatherErrors: Error[] = [];
  #role: IceRole;
  #credentials: IceCredentials;
  #remoteCredentials: IceCredentials | undefined;
  #state: IceAgentState = 'idle';
  #session = new AbortController();
  #gathering = false;
  #gatherPending = 0;
  #remoteEnd = false;
  #selected: CandidatePair | undefined;
  #selectedSession: AbortSignal | undefined;
  #nominating: CandidatePair | undefined;
  #nominationFailed = new Set<CandidatePair>();
  #consent: ConsentFreshness | undefined;
  #pacer: Timer | undefined;
  #nominationTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: IceAgentOptions) {
    super();
    this.#o = options;
    this.#t = { ...DEFAULT_ICE_TIMING, ...options.timing };
    this.#clock = options.clock;
    this.#role = options.role;
    this.#tieBreaker = options.tieBreaker ?? randomTieBreaker();
    this.#credentials = options.credentials ?? randomCredentials();
    const problem = credentialsProblem(this.#credentials);
    if (problem) throw new SluiceError('SLUICE_ERR_ICE_STATE', `local ICE credentials: ${problem}`);
    this.#list = new CheckList(options.maxPairs ?? 100);
    this.channel = new IceDatagramChannel({ sendFramed: (b) => this.#sendData(b), selectedPair: () => this.selectedPair });
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  get state(): IceAgentState {
    return this.#state;
  }

  get role(): IceRole {
    return this.#role;
  }

  get localCredentials(): IceCredentials {
    return this.#credentials;
  }

  /** Candidates advertised so far (what 'candidate' events carried). */
  get localCandidates(): IceCandidate[] {
    return [...this.#local.values()].map((l) => l.candidate).filter((c) => this.#advertised(c));
  }

  get remoteCandidates(): IceCandidate[] {
    return [...this.#remote.values()];
  }

  /** A snapshot of the check list, highest priority first. */
  get pairs(): readonly Readonly<CandidatePair>[] {
    return [...this.#list.all()];
  }

  get selectedPair(): SelectedPairInfo | undefined {
    const p = this.#selected;
    if (!p) return undefined;
    const l = p.mapped ?? p.base.candidate;
    return {
      local: { type: l.type, address: l.address, port: l.port },
      remote: { type: p.remote.type, address: p.remote.address, port: p.remote.port },
      base: p.base.address,
      relayed: isRelayed(p),
      rttMs: p.rttMs,
    };
  }

  /** Adds a socket: its host candidate, and srflx and TURN candidates through it once gathering runs. */
  addSocket(socket: IceSocket): DatagramIngress {
    this.#assertOpen();
    const ip = canonicalIp(socket.local.address);
    if (!ip || ip.address === '0.0.0.0' || ip.address === '::') {
      throw new SluiceError('SLUICE_ERR_ADDRESS_INVALID', `an ICE socket needs a host address, not "${socket.local.address}"`);
    }
    const local = { ...socket.local, address: ip.address, family: ip.family };
    const base = socketBase(this.#bases.length, { local, send: (b, p, a) => socket.send(b, p, a) }, 65535 - this.#sockets.length, this.#clock, this.#life.signal);
    const entry = { socket, base, turns: [] as TurnClient[] };
    this.#bases.push(base);
    this.#sockets.push(entry);
    if (this.#gathering) this.#gatherSocket(entry);
    return (buf, from) => {
      for (const turn of entry.turns) if (turn.handleDatagram(buf, from)) return true;
      return this.#receive(base, buf, from);
    };
  }

  /** Adds a relay from outside (the gateway's, say); its allocation becomes a relayed candidate. The caller keeps owning it. */
  addRelay(relay: RelayTransport): void {
    this.#assertOpen();
    this.#relays.push(relay);
    if (this.#gathering) this.#track(this.#gatherRelay(relay, 'external'));
  }

  /** Starts gathering on every socket and relay; resolves when all of it has ended ('gathering-complete'). */
  gather(): Promise<void> {
    this.#assertOpen();
    if (!this.#gathering) {
      this.#gathering = true;
      this.#gatherPending++;
      for (const s of this.#sockets) this.#gatherSocket(s);
      for (const r of this.#relays) this.#track(this.#gatherRelay(r, 'external'));
      this.#gatherDone();
    }
    return this.#gatherPending === 0 ? Promise.resolve() : new Promise((resolve) => this.once('gathering-complete', () => resolve()));
  }

  setRemoteCredentials(credentials: IceCredentials): void {
    this.#assertOpen();
    const problem = credentialsProblem(credentials);
    if (problem) throw new SluiceError('SLUICE_ERR_ICE_STATE', `remote ICE credentials: ${problem}`);
    this.#remoteCredentials = credentials;
    if (this.#state === 'idle') this.#enterChecking();
    this.#kick();
  }

  /**
   * A candidate from the peer (an IceCandidate or its SDP text); null or undefined means
   * end-of-candidates. Returns false when it is ignored: unparsable, another component, too
   * many, or after close.
   */
  addRemoteCandidate(candidate: IceCandidate | string | null | undefined): boolean {
    if (this.#state === 'closed') return false;
    if (candidate === null || candidate === undefined) {
      this.#remoteEnd = true;
      this.#maybeFail();
      return true;
    }
    const c = typeof candidate === 'string' ? parseCandidate(candidate) : candidate;
    if (typeof c === 'string' || c.component !== 1) return false;
    const key = addressKey(c.address, c.port);
    const known = this.#remote.get(key);
    if (known && known.type !== 'prflx') return true;
    if (!known && this.#remote.size >= (this.#o.maxRemoteCandidates ?? 64)) return false;
    this.#remote.set(key, c);
    if (known) {
      // RFC 8445 §7.3.1.3: a peer-reflexive candidate that signalling names later takes its real type and priority.
      for (const p of this.#list.all()) if (p.remote === known) p.remote = c;
      this.#list.reprioritise(this.#role);
    } else {
      for (const base of this.#bases) this.#pair(base, c);
    }
    this.#kick();
    return true;
  }

  /**
   * ICE restart (RFC 8445 §9): new local credentials, the peer's candidates and every pair
   * forgotten, local candidates advertised again. Data keeps flowing on the previous pair until
   * a new one is selected. The peer must restart too; send it the new credentials and candidates.
   */
  restart(credentials: IceCredentials = randomCredentials()): void {
    this.#assertOpen();
    const problem = credentialsProblem(credentials);
    if (problem) throw new SluiceError('SLUICE_ERR_ICE_STATE', `local ICE credentials: ${problem}`);
    this.#session.abort();
    this.#session = new AbortController();
    this.#credentials = credentials;
    this.#remoteCredentials = undefined;
    this.#remote.clear();
    for (const [k, l] of this.#local) if (l.candidate.type === 'prflx') this.#local.delete(k);
    this.#list.clear();
    this.#remoteEnd = false;
    this.#nominating = undefined;
    this.#nominationFailed.clear();
    this.#stopTimers();
    this.#consent?.stop();
    this.#consent = undefined;
    if (this.#state !== 'idle') this.#enterChecking();
    for (const l of this.#local.values()) if (this.#advertised(l.candidate)) this.emit('candidate', l.candidate);
    if (this.#gathering && this.#gatherPending === 0) this.emit('gathering-complete', { errors: [...this.#gatherErrors] });
  }

  /** Stops everything and deletes the TURN allocations the agent made. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#setState('closed');
    this.#stopTimers();
    this.#consent?.stop();
    this.#session.abort();
    this.channel.close();
    this.#selected = undefined;
    // The TURN clients delete their allocations first; aborting the lifetime would drop them at once.
    await Promise.allSettled(this.#owned.map((t) => t.close()));
    this.#life.abort();
  }

  // ---- gathering

  #gatherSocket(s: { socket: IceSocket; base: IceBase; turns: TurnClient[] }): void {
    const { base } = s;
    const all = this.#o.policy !== 'relay';
    if (all) this.#addLocal(base, base.candidate);
    const pref = 65535 - this.#sockets.indexOf(s);
    if (all) {
      for (const server of this.#o.stunServers ?? []) {
        this.#track(queryServerReflexive(base, server, this.#life.signal, this.#t.gather).then((mapped) => {
          this.#addLocal(base, srflxCandidate(base, mapped, server.address, pref));
        }));
      }
    }
    for (const config of this.#o.turnServers ?? []) {
      const turn = new TurnClient(config, { clock: this.#clock, send: (b, p, a) => base.send(b, { address: a, port: p }), signal: this.#life.signal });
      s.turns.push(turn);
      this.#owned.push(turn);
      this.#track(this.#gatherRelay(turn, config.server.address, base));
    }
  }

  async #gatherRelay(relay: RelayTransport, server: string, via?: IceBase): Promise<void> {
    const alloc: RelayAllocation = await relay.allocate(this.#life.signal);
    if (this.#state === 'closed') return;
    const pref = 65535 - this.#bases.filter((b) => b.kind === 'relay').length;
    const base = relayBase(this.#bases.length, relay, alloc, server, pref, this.#clock, this.#life.signal);
    this.#bases.push(base);
    relay.setReceiver({ onRelayDatagram: (buf, from) => void this.#receive(base, buf, from), onRelayClosed: (err) => this.#baseLost(base, err) });
    this.#addLocal(base, base.candidate);
    // The relay saw this side's NAT mapping: a srflx candidate too, unless a STUN server found it already.
    if (via && alloc.mapped && this.#o.policy !== 'relay') this.#addLocal(via, srflxCandidate(via, alloc.mapped, server, via.candidate.priority >> 8 & 0xffff));
  }

  #track(task: Promise<void>): void {
    this.#gatherPending++;
    task.catch((err: unknown) => this.#gatherErrors.push(err as Error)).finally(() => this.#gatherDone());
  }

  #gatherDone(): void {
    if (--this.#gatherPending > 0 || this.#state === 'closed') return;
    this.emit('gathering-complete', { errors: [...this.#gatherErrors] });
    this.#maybeFail();
  }

  #advertised(c: IceCandidate): boolean {
    return c.type !== 'prflx' && (this.#o.policy !== 'relay' || c.type === 'relay');
  }

  #addLocal(base: IceBase, c: IceCandidate): void {
    const key = addressKey(c.address, c.port);
    if (this.#local.has(key) || this.#state === 'closed') return; // redundant (RFC 8445 §5.1.3): e.g. srflx = host without NAT
    this.#local.set(key, { candidate: c, base });
    if (this.#advertised(c)) this.emit('candidate', c);
    if (c === base.candidate) for (const r of this.#remote.values()) this.#pair(base, r);
  }

  /** Pairs a base with a remote candidate. srflx candidates are never paired: their base is (RFC 8445 §6.1.2.4). */
  #pair(base: IceBase, remote: IceCandidate): void {
    if (base.address.family !== remote.family || !this.#local.has(addressKey(base.candidate.address, base.candidate.port))) return;
    if (base.kind === 'socket' && this.#o.policy === 'relay') return;
    if (this.#list.add(base, remote, this.#role)) this.#kick();
  }

  #baseLost(base: IceBase, err: Error | undefined): void {
    if (this.#state === 'closed') return;
    this.#list.failBase(base);
    if (err) this.#gatherErrors.push(err);
    if (this.#selected?.base === base) this.#fail();
    else this.#maybeFail();
  }

  // ---- receiving

  #receive(base: IceBase, buf: Buffer, from: StunPeer): boolean {
    const first = buf[0];
    if (first === undefined || this.#state === 'closed') return false;
    if (first === ICE_DATA_PREFIX) return this.#receiveData(buf, from);
    if (first > 3) return false;
    let msg: DecodedStunMessage | undefined;
    try {
      msg = decodeStunDatagram(buf);
    } catch {
      return false;
    }
    if (!msg || msg.fingerprint === 'invalid' || msg.method !== StunMethod.Binding) return false;
    if (msg.cls === 'request') return this.#onCheck(base, msg, from);
    if (msg.cls === 'indication') return this.#knownRemote(from) !== undefined; // keepalive (RFC 8445 §11)
    return base.table.handleResponse(msg, from);
  }

  #receiveData(buf: Buffer, from: StunPeer): boolean {
    // From any candidate of the peer: it may have selected a pair before this side did.
    if (!this.#knownRemote(from)) return false;
    this.channel.deliver(buf.subarray(1));
    return true;
  }

  #knownRemote(from: StunPeer): IceCandidate | undefined {
    const found = this.#remote.get(addressKey(from.address, from.port));
    if (found) return found;
    const ip = canonicalIp(from.address)?.address;
    const c = ip === undefined ? undefined : this.#remote.get(addressKey(ip, from.port));
    if (c) return c;
    const sel = this.#selected?.remote; // still accepted across a restart
    return sel && sel.address === ip && sel.port === from.port ? sel : undefined;
  }

  /** An incoming check (RFC 8445 §7.3). Returns false when the USERNAME is for another agent. */
  #onCheck(base: IceBase, msg: DecodedStunMessage, from: StunPeer): boolean {
    if (base.kind === 'socket' && this.#o.policy === 'relay') return false;
    const { ufrag, pwd } = this.#credentials;
    const v = readCheckRequest(msg, ufrag, pwd);
    if (v.kind === 'not-mine') return false;
    if (v.kind === 'reject') return base.send(encodeCheckError(msg, v.code, pwd, v.unknown), from), true;
    // Role conflict (§7.3.1.1): the larger tie-breaker keeps controlling.
    if (v.role === this.#role && v.tieBreaker !== undefined) {
      const weWin = this.#tieBreaker >= v.tieBreaker;
      if (this.#role === 'controlling' && weWin) return base.send(encodeCheckError(msg, StunErrorCode.RoleConflict, pwd), from), true;
      if (this.#role === 'controlled' && !weWin) return base.send(encodeCheckError(msg, StunErrorCode.RoleConflict, pwd), from), true;
      this.#switchRole(this.#role === 'controlling' ? 'controlled' : 'controlling');
    }
    const ip = canonicalIp(from.address)!;
    const source: Endpoint = { address: ip.address, port: from.port, family: ip.family };
    base.send(encodeCheckSuccess(msg, source, pwd), from);
    let remote = this.#remote.get(addressKey(source.address, source.port));
    if (!remote) {
      if (this.#remote.size >= (this.#o.maxRemoteCandidates ?? 64)) return true;
      remote = {
        foundation: foundationOf('prflx', source.address), component: 1, transport: 'udp', priority: v.priority,
        address: source.address, port: source.port, family: source.family, type: 'prflx',
      };
      this.#remote.set(addressKey(source.address, source.port), remote);
    }
    const pair = this.#list.get(base, source) ?? this.#list.add(base, remote, this.#role);
    if (!pair) return true;
    if (v.useCandidate && this.#role === 'controlled') pair.remoteNominated = true;
    if (pair.state === 'succeeded') {
      if (pair.remoteNominated && this.#role === 'controlled') this.#select(pair);
    } else if (this.#list.trigger(pair)) {
      this.#kick();
    }
    return true;
  }

  // ---- checks

  /** Starts Ta pacing if it is not running; the first check goes at once. */
  #kick(): void {
    if (this.#pacer || this.#state === 'closed' || !this.#remoteCredentials) return;
    this.#pacer = this.#clock.setInterval(() => this.#tick(), this.#t.taMs);
    this.#tick();
  }

  #tick(): void {
    const pair = this.#remoteCredentials ? this.#list.next(!this.#selectedNow()) : undefined;
    if (!pair) {
      this.#pacer?.cancel();
      this.#pacer = undefined;
      this.#maybeFail();
      return;
    }
    void this.#check(pair, 'ordinary');
  }

  /** Sends one check on `pair` and handles its outcome. Resolves true when an authenticated success came back. */
  async #check(pair: CandidatePair, kind: CheckKind): Promise<boolean> {
    const remote = this.#remoteCredentials;
    if (!remote) return false;
    const session = this.#session.signal;
    const role = this.#role;
    const priority = candidatePriority(pair.base.kind === 'relay' ? 'relay' : 'prflx', (pair.base.candidate.priority >> 8) & 0xffff);
    const bytes = encodeCheckRequest({
      localUfrag: this.#credentials.ufrag, remoteUfrag: remote.ufrag, remotePwd: remote.pwd, priority, role,
      tieBreaker: this.#tieBreaker, useCandidate: kind === 'nominate',
    });
    if (kind === 'ordinary') transition(pair, 'in-progress');
    const to = pair.remote;
    try {
      const res = await pair.base.table.request(bytes, to, {
        signal: session,
        timing: kind === 'consent' ? CONSENT_CHECK_TIMING : this.#t.check,
        // Symmetric responses only (RFC 8445 §7.2.5.2.1), signed with the peer's password.
        accept: (r, from) => from.port === to.port && canonicalIp(from.address)?.address === to.address && checkResponseAuthentic(r, remote.pwd),
      });
      if (session.aborted) return false;
      return this.#onResponse(pair, kind, role, res.response, res.rttMs, priority);
    } catch {
      if (session.aborted) return false;
      this.#checkFailed(pair, kind);
      return false;
    }
  }

  #onResponse(pair: CandidatePair, kind: CheckKind, sentAs: IceRole, res: DecodedStunMessage, rttMs: number | undefined, priority: number): boolean {
    if (res.cls === 'error') {
      if (getAttribute(res, ErrorCode)?.code === StunErrorCode.RoleConflict && kind !== 'consent') {
        // §7.2.5.1: take the role opposite to the one the check claimed, and check the pair again.
        if (this.#role === sentAs) this.#switchRole(sentAs === 'controlling' ? 'controlled' : 'controlling');
        if (pair.state === 'in-progress') transition(pair, 'waiting');
        if (kind === 'nominate') this.#nominating = undefined;
        this.#list.trigger(pair);
        this.#kick();
        return false;
      }
      this.#checkFailed(pair, kind);
      return false;
    }
    let mapped: Endpoint | undefined;
    try {
      mapped = getAttribute(res, XorMappedAddress);
    } catch {
      mapped = undefined;
    }
    if (!mapped) return this.#checkFailed(pair, kind), false;
    if (rttMs !== undefined) pair.rttMs = rttMs;
    if (kind === 'consent') return true;
    pair.mapped = this.#localFor(pair.base, mapped, priority);
    if (pair.state === 'in-progress') {
      transition(pair, 'succeeded');
      pair.validAt = this.#clock.now();
      this.#list.unfreeze(pairFoundation(pair));
    }
    this.#list.reprioritise(this.#role);
    if (kind === 'nominate') this.#select(pair);
    else if (this.#role === 'controlled' && pair.remoteNominated) this.#select(pair);
    else this.#evaluateNomination();
    this.#kick();
    return true;
  }

  #checkFailed(pair: CandidatePair, kind: CheckKind): void {
    if (kind === 'ordinary' && pair.state === 'in-progress') transition(pair, 'failed');
    if (kind === 'nominate') {
      this.#nominating = undefined;
      this.#nominationFailed.add(pair);
    }
    this.#evaluateNomination(); // a better pair that failed may leave the best valid one free to nominate
    this.#maybeFail();
  }

  /** The local candidate the peer saw: a known one of this base, or a new peer-reflexive one (§7.2.5.3.1). */
  #localFor(base: IceBase, mapped: Endpoint, priority: number): IceCandidate {
    const key = addressKey(mapped.address, mapped.port);
    const known = this.#local.get(key);
    if (known && known.base === base) return known.candidate;
    const c: IceCandidate = {
      foundation: foundationOf('prflx', base.address.address), component: 1, transport: 'udp', priority,
      address: mapped.address, port: mapped.port, family: mapped.family, type: 'prflx',
      related: { address: base.address.address, port: base.address.port },
    };
    if (!known) this.#local.set(key, { candidate: c, base });
    return c;
  }

  #switchRole(role: IceRole): void {
    this.#role = role;
    this.#list.reprioritise(role);
  }

  // ---- nomination and selection

  #evaluateNomination(): void {
    if (this.#role !== 'controlling' || this.#nominating || this.#selectedNow() || this.#state === 'closed') return;
    this.#nominationTimer?.cancel();
    this.#nominationTimer = undefined;
    const candidates = this.#list.all().filter((p) => !this.#nominationFailed.has(p));
    const d = decideNomination(candidates, this.#clock.now(), { directDelayMs: this.#t.directNominationDelayMs, relayDelayMs: this.#t.relayNominationDelayMs });
    if (d.kind === 'wait') {
      this.#nominationTimer = this.#clock.setTimeout(() => this.#evaluateNomination(), d.retryAt - this.#clock.now());
    } else if (d.kind === 'nominate') {
      this.#nominating = d.pair;
      void this.#check(d.pair, 'nominate');
    }
  }

  #selectedNow(): boolean {
    return this.#selected !== undefined && this.#selectedSession === this.#session.signal;
  }

  #select(pair: CandidatePair): void {
    if (this.#selectedNow() || this.#state === 'closed') return;
    this.#selected = pair;
    this.#selectedSession = this.#session.signal;
    this.#nominating = undefined;
    this.#connectTimer?.cancel();
    this.#consent?.stop();
    this.#consent = new ConsentFreshness(
      { clock: this.#clock, random: this.#o.random ?? Math.random, check: () => this.#check(pair, 'consent'), onStatus: (s) => this.#onConsent(pair, s) },
      { intervalMs: this.#t.consentIntervalMs, staleMs: this.#t.consentStaleMs, expireMs: this.#t.consentExpireMs },
    );
    this.#setState('connected');
    this.emit('selected-pair', this.selectedPair!);
  }

  #onConsent(pair: CandidatePair, status: ConsentStatus): void {
    if (pair !== this.#selected || this.#state === 'closed') return;
    if (status === 'stale') this.#setState('disconnected');
    else if (status === 'fresh') this.#setState('connected');
    else this.#fail();
  }

  // ---- states

  #enterChecking(): void {
    this.#setState('checking');
    this.#connectTimer?.cancel();
    this.#connectTimer = this.#clock.setTimeout(() => {
      if (this.#state === 'checking') this.#fail();
    }, this.#t.connectTimeoutMs);
  }

  /** Checking has run out: everything gathered and signalled, every pair failed. */
  #maybeFail(): void {
    if (this.#state !== 'checking' || this.#selectedNow() || this.#nominating || !this.#remoteEnd || this.#gatherPending > 0 || !this.#gathering) return;
    if (this.#list.pending || this.#list.all().some((p) => p.state === 'succeeded')) return;
    this.#fail();
  }

  /** RFC 7675: no more sending on a pair without consent. */
  #fail(): void {
    this.#consent?.stop();
    this.#consent = undefined;
    this.#selected = undefined;
    this.#stopTimers();
    this.#setState('failed');
  }

  #stopTimers(): void {
    this.#pacer?.cancel();
    this.#pacer = undefined;
    this.#nominationTimer?.cancel();
    this.#nominationTimer = undefined;
    this.#connectTimer?.cancel();
    this.#connectTimer = undefined;
  }

  #setState(to: IceAgentState): void {
    const from = this.#state;
    if (from === to || !canMove(from, to)) return;
    this.#state = to;
    this.emit('state', to, from);
  }

  #sendData(framed: Buffer): boolean {
    const p = this.#selected;
    if (!p || this.#state === 'closed' || this.#state === 'failed') return false;
    p.base.send(framed, p.remote);
    return true;
  }

  #assertOpen(): void {
    if (this.#state === 'closed') throw new SluiceError('SLUICE_ERR_CLOSED', 'ICE agent is closed');
  }
}
