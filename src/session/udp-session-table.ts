import { canonicalIp, ipv4PortKey, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { errnoCode, isSluiceError } from '../core/errors.js';
import type { RouteConfig } from '../config/types.js';
import { applyAdmitter, eventReporter, type Admitter, type VerdictReporter } from '../admission/admitter.js';
import { rejudge, type ReverdictCount } from '../admission/reverdict.js';
import { UdpProxyHeaders } from './udp-proxy-header.js';
import { AdmissionLimits } from '../admission/limits.js';
import { bandwidthLimiterFor, type BandwidthLimiter, type BucketPair } from '../admission/bandwidth-limiter.js';
import type { DropReason, EndReason, EventStream, RejectReason } from '../observe/events.js';
import type { DatagramChannel, DatagramDialer } from '../upstream/dialer.js';
import { UdpSession, type UdpSessionOwner } from './udp-session.js';
import { budgetAllows, budgetReceived, windowTicks } from '../core/reply-budget.js';
import { CompletedExchanges } from './completed-exchanges.js';


export interface UdpTableDeps {
  readonly clock: Clock;
  readonly dialer: DatagramDialer;
  readonly events: EventStream;
  readonly nextFlowId: () => number;
  /** Sends one datagram back to a client through the listener socket. */
  readonly sendToClient: (buf: Buffer, port: number, address: string) => void;
  /** The listener's own address: the destination in PROXY headers sent for plain clients. */
  readonly local: () => Endpoint;
  readonly admit?: Admitter;
  /** Bandwidth buckets this route shares with others (an agent's total on the gateway); absent = none. */
  readonly sharedBandwidth?: BucketPair;
}

const DROP_REASONS: readonly DropReason[] = [
  'too-big',
  'setup-queue-full',
  'send-error',
  'no-session',
  'proxy-header-untrusted',
  'proxy-header-missing',
  'proxy-header-invalid',
  'reply-budget',
  'bandwidth',
];
const REPLY_BUDGET = DROP_REASONS.length - 2;
const BANDWIDTH = DROP_REASONS.length - 1;

/**
 * Sweep period for a given idle timeout: fine enough that expiry lands within [T, T + 2 sweeps).
 * An idle timeout of 0 means "never" (as for TCP); the sweep then only flushes drop counts.
 */
export function sweepIntervalMs(idleTimeoutMs: number): number {
  if (idleTimeoutMs <= 0) return 250;
  return Math.max(10, Math.min(250, Math.floor(idleTimeoutMs / 8)));
}

/** How long a finished request/response exchange stays untouchable before a full table may end it. */
const EXCHANGE_QUIET_MS = 1000;

/**
 * The per-datagram path of a UDP route and its session table: one session per client ip:port,
 * each with its own upstream channel. Admission runs once, when a new client's first datagram
 * arrives, before any upstream resource is spent. Idle sessions are found by a periodic sweep
 * over coarse ticks, so the per-datagram path touches no timer and allocates nothing.
 */
export class UdpSessionTable implements UdpSessionOwner {
  readonly #v4 = new Map<number, UdpSession>();
  readonly #other = new Map<string, UdpSession>();
  readonly #limits: AdmissionLimits;
  /** Null on a route without `bandwidth`: sessions then carry null gates and the hot path skips them. */
  #bandwidth: BandwidthLimiter | null;
  readonly #exchanges = new CompletedExchanges();
  readonly #drops = new Float64Array(DROP_REASONS.length);
  readonly #abort = new AbortController();
  #route: RouteConfig;
  #admit: Admitter | undefined;
  #pp: UdpProxyHeaders | null;
  readonly #reporter: VerdictReporter;
  #tick = 0;
  #idleTicks = 0;
  /** Reply budget ratio; 0 when the route has none. */
  #budgetRatio = 0;
  #budgetTicks = 1;
  /** Index of the current budget window: advanced on the sweep, read per datagram. */
  #budgetWindow = 0;
  #sweepMs = 0;
  #sweepTimer: Timer | undefined;
  #draining = false;
  #onEmpty: (() => void)[] = [];

  constructor(
    route: RouteConfig,
    private readonly deps: UdpTableDeps,
  ) {
    this.#route = route;
    this.#admit = deps.admit;
    this.#pp = route.proxyProtocol ? new UdpProxyHeaders(route.proxyProtocol) : null;
    this.#limits = new AdmissionLimits(limitSettings(route), deps.clock);
    this.#bandwidth = bandwidthLimiterFor(route.bandwidth, deps.clock, deps.sharedBandwidth);
    this.#reporter = eventReporter(deps.events, deps.clock, () => this.#route.name, 'udp');
    this.#schedule();
  }

  get size(): number {
    return this.#v4.size + this.#other.size;
  }

  get route(): RouteConfig {
    return this.#route;
  }

  sessions(): IterableIterator<UdpSession> {
    return [...this.#v4.values(), ...this.#other.values()][Symbol.iterator]();
  }

  /** Hot path: one datagram from a client (or from a trusted proxy in front of it). */
  onDatagram(buf: Buffer, address: string, port: number): void {
    if (this.#pp !== null && this.#pp.receives) this.#onProxied(buf, address, port);
    else this.#plain(buf, address, port);
  }

  /**
   * Hot path for an IPv4 client given as a number (ListenerReceiver.onDatagramV4): a known
   * session is found without a string; the first datagram of a client takes the path above.
   */
  onDatagramV4(buf: Buffer, ipv4: number, port: number): void {
    const s = this.#pp !== null && this.#pp.receives ? undefined : this.#v4.get(ipv4 * 65536 + port);
    if (s !== undefined) this.#fromClient(s, buf);
    else this.onDatagram(buf, `${ipv4 >>> 24}.${(ipv4 >>> 16) & 255}.${(ipv4 >>> 8) & 255}.${ipv4 & 255}`, port);
  }

  #plain(buf: Buffer, address: string, port: number): void {
    const k = ipv4PortKey(address, port);
    let s = k >= 0 ? this.#v4.get(k) : this.#other.get(`${address}|${port}`);
    if (s === undefined) {
      s = this.#create(k >= 0 ? k : `${address}|${port}`, address, port, address, port, undefined);
      if (s === undefined) return;
    }
    this.#fromClient(s, buf);
  }

  #fromClient(s: UdpSession, buf: Buffer): void {
    const prefix = s.prefix;
    if (buf.length + (prefix === null ? 0 : prefix.length) > this.#route.udp.maxDatagramBytes) {
      this.#drops[0]++;
      return;
    }
    const bw = s.bwUp;
    if (bw !== null && !bw.tryTake(buf.length)) {
      this.#drops[BANDWIDTH]++;
      return;
    }
    s.lastTick = this.#tick;
    s.bytesFromClient += buf.length;
    s.packetsFromClient++;
    if (this.#budgetRatio !== 0) budgetReceived(s, buf.length, this.#budgetWindow);
    const ch = s.channel;
    if (ch !== null) {
      ch.send(buf, prefix);
    } else if (s.queue !== null && s.queue.length < this.#route.udp.setupQueue) {
      s.queue.push(Buffer.from(buf)); // a datapath may reuse buf's memory once this call returns
    } else {
      this.#drops[1]++;
    }
  }

  /** A route that accepts PROXY headers: the real client comes from a trusted sender's header. */
  #onProxied(buf: Buffer, address: string, port: number): void {
    const v = this.#pp!.inbound(buf, address);
    if (v === null) return this.#plain(buf, address, port);
    if (typeof v === 'string') {
      this.#drops[DROP_REASONS.indexOf(v)]++;
      return;
    }
    const src = v.source;
    const clientAddr = src ? src.address : address;
    const clientPort = src ? src.port : port;
    const k = ipv4PortKey(clientAddr, clientPort);
    const key = k >= 0 ? k : `${clientAddr}|${clientPort}`;
    let s = k >= 0 ? this.#v4.get(k) : this.#other.get(key as string);
    if (s === undefined) {
      s = this.#create(key, clientAddr, clientPort, address, port, v.destination);
      if (s === undefined) return;
    } else {
      s.replyAddress = address;
      s.replyPort = port;
    }
    this.#fromClient(s, buf.subarray(v.offset));
  }

  /** Hot path: one datagram back from a session's upstream. */
  toClient(s: UdpSession, buf: Buffer): void {
    if (s.state === 'closed') return;
    if (buf.length > this.#route.udp.maxDatagramBytes) {
      this.#drops[0]++;
      return;
    }
    if (this.#budgetRatio !== 0 && !budgetAllows(s, buf.length, this.#budgetRatio, this.#budgetWindow)) {
      this.#drops[REPLY_BUDGET]++;
      return;
    }
    const bw = s.bwDown;
    if (bw !== null && !bw.tryTake(buf.length)) {
      this.#drops[BANDWIDTH]++;
      return;
    }
    s.lastTick = this.#tick;
    s.bytesToClient += buf.length;
    s.packetsToClient++;
    if (s.unanswered) {
      s.unanswered = false;
      this.#limits.refund(s.source);
      this.#exchanges.answered(s);
    }
    if (s.prefixUntilReply) {
      s.prefixUntilReply = false;
      s.prefix = null;
    }
    this.deps.sendToClient(buf, s.replyPort, s.replyAddress);
  }

  upstreamFailed(s: UdpSession, err: Error): void {
    if (isSluiceError(err, 'SLUICE_ERR_PEER_OFFLINE')) return this.end(s, 'peer-offline');
    const code = errnoCode(err);
    this.end(s, code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? 'upstream-unreachable' : 'upstream-error');
  }

  /** Counts a datagram the listener could not send back to a client. */
  countSendError(): void {
    this.#drops[2]++;
  }

  /** Applies new settings of the same route: new sessions use them; idle timeout applies to live ones too. */
  update(route: RouteConfig, admit: Admitter | undefined): void {
    this.#route = route;
    this.#admit = admit;
    this.#pp = route.proxyProtocol ? new UdpProxyHeaders(route.proxyProtocol) : null;
    this.#limits.update(limitSettings(route));
    if (this.#bandwidth === null) this.#bandwidth = bandwidthLimiterFor(route.bandwidth, this.deps.clock, this.deps.sharedBandwidth);
    else if (route.bandwidth === undefined && this.deps.sharedBandwidth === undefined) this.#bandwidth = null;
    else this.#bandwidth.update(route.bandwidth ?? {});
    this.#schedule();
  }

  /**
   * Judges every live session again with the current admitter (admission/reverdict.ts). A session
   * still opening was never started: it is reported as refused; an open one ends with the reason.
   */
  reverdict(): ReverdictCount {
    const r = this.#reporter;
    return rejudge(
      this.sessions(),
      this.#admit,
      this.#route.name,
      (s, v) => {
        if (s.state === 'opening') r.rejected(s.client, v);
        this.end(s, v.reason, v.detail);
      },
      (s, v) => r.wouldEnd(s, v),
    );
  }

  /** Refuses new clients from now on; resolves once the last session has ended. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onEmpty.push(resolve));
  }

  /** Ends every session with `reason` and stops the sweep. Idempotent. */
  close(reason: EndReason): void {
    this.#draining = true;
    this.#abort.abort();
    for (const s of this.sessions()) this.end(s, reason);
    this.#sweepTimer?.cancel();
    this.#sweepTimer = undefined;
    this.#flushDrops();
  }

  /** Ends `s` (idempotent); `detail` says which rule, for a verdict reason. */
  end(s: UdpSession, reason: EndReason, detail?: string): void {
    if (s.state === 'closed') return;
    const wasOpen = s.state === 'open';
    s.state = 'closed';
    const map = typeof s.key === 'number' ? this.#v4 : this.#other;
    if ((map as Map<unknown, UdpSession>).get(s.key) === s) (map as Map<unknown, UdpSession>).delete(s.key);
    this.#limits.release(s.source);
    s.channel?.close();
    s.queue = null;
    if (wasOpen) {
      const now = this.deps.clock.now();
      this.deps.events.emit({
        type: 'session-ended',
        at: this.deps.clock.wallNow(),
        flow: s,
        upstream: s.upstream,
        startedAt: s.startedWall,
        durationMs: Math.max(0, Math.round(now - s.startedAt)),
        reason,
        counters: s.counters(),
        ...(detail ? { detail } : {}),
        ...dropsOf(s.channel),
      });
    }
    if (this.size === 0) for (const done of this.#onEmpty.splice(0)) done();
  }

  #create(key: number | string, address: string, port: number, replyAddress: string, replyPort: number, destination: Endpoint | undefined): UdpSession | undefined {
    const canon = canonicalIp(address);
    if (!canon) return undefined;
    const client: Endpoint = { address: canon.address, port, family: canon.family };
    const { clock, events } = this.deps;
    const name = this.#route.name;
    const reject = (reason: RejectReason, detail?: string) => {
      events.emit({ type: 'session-rejected', at: clock.wallNow(), route: name, proto: 'udp', client, reason, ...(detail ? { detail } : {}) });
      return undefined;
    };
    if (this.#draining) return reject('draining');
    if (applyAdmitter(this.#admit, client, name, this.#reporter) !== undefined) return undefined;
    const evict = this.#route.udp.onLimit === 'evict-lru';
    const source = this.#limits.keyOf(client);
    const limited = this.#admitOrReclaim(source, evict);
    if (limited) return reject(limited, source === client.address ? undefined : `source ${source}`);
    if (evict && this.#limits.atRouteCap) this.#evictOldest();

    const s = new UdpSession(this, this.deps.nextFlowId(), name, client, key, replyAddress, replyPort, clock.now(), clock.wallNow(), this.#tick);
    s.origin = this.#route.origin;
    s.source = source;
    if (this.#bandwidth !== null) {
      const g = this.#bandwidth.gatesFor(source);
      s.bwUp = g.up;
      s.bwDown = g.down;
    }
    if (this.#pp !== null) {
      s.prefix = this.#pp.outboundHeader(client, destination ?? this.deps.local());
      s.prefixUntilReply = s.prefix !== null && this.#pp.settings.udp === 'first';
    }
    if (typeof key === 'number') this.#v4.set(key, s);
    else this.#other.set(key, s);
    this.#limits.acquire(source);
    void this.#open(s);
    return s;
  }

  async #open(s: UdpSession): Promise<void> {
    const route = this.#route;
    const started = this.deps.clock.now();
    try {
      const ch = await this.deps.dialer.open(route.upstream, s, { signal: this.#abort.signal, timeoutMs: 10_000, client: s.client, local: this.deps.local() });
      if (s.state === 'closed') {
        ch.close();
        return;
      }
      s.channel = ch;
      s.upstream = ch.remote;
      s.state = 'open';
      this.deps.events.emit({ type: 'session-started', at: this.deps.clock.wallNow(), flow: s, upstream: ch.remote, startedAt: s.startedWall });
      this.deps.events.emit({ type: 'dial-ok', at: this.deps.clock.wallNow(), flow: s, latencyMs: this.deps.clock.now() - started });
      const queued = s.queue!;
      s.queue = null;
      for (let i = 0; i < queued.length && s.channel !== null && s.state === 'open'; i++) ch.send(queued[i]!, s.prefix);
    } catch (err) {
      const e = err as Error & { code?: string };
      this.deps.events.emit({
        type: 'dial-error',
        at: this.deps.clock.wallNow(),
        flow: s,
        upstream: `${route.upstream.host}:${route.upstream.port}`,
        code: e.code ?? 'ERROR',
        message: e.message,
        latencyMs: this.deps.clock.now() - started,
      });
      this.#drops[3] += s.queue?.length ?? 0;
      this.end(s, isSluiceError(err, 'SLUICE_ERR_PEER_OFFLINE') ? 'peer-offline' : 'upstream-unreachable');
    }
  }

  /**
   * Admission; at the per-source or the route cap, a finished request/response exchange that has
   * been quiet for EXCHANGE_QUIET_MS (of this source, or of any source at the route cap) is ended
   * (`evicted`) to make room, at most once per cap, instead of refusing the new client.
   */
  #admitOrReclaim(source: string, evict: boolean): RejectReason | undefined {
    let limited = this.#limits.admit(source, evict);
    const quietSince = this.#tick - Math.ceil(Math.min(EXCHANGE_QUIET_MS, this.#route.udp.idleTimeoutMs) / this.#sweepMs);
    for (let tries = 0; tries < 2 && (limited === 'limit-source-sessions' || limited === 'limit-route-sessions'); tries++) {
      const old = this.#exchanges.take(limited === 'limit-source-sessions' ? source : undefined, quietSince);
      if (old === undefined) break;
      this.end(old, 'evicted');
      limited = this.#limits.admit(source, evict);
    }
    return limited;
  }

  #evictOldest(): void {
    let oldest: UdpSession | undefined;
    for (const s of this.sessions()) if (oldest === undefined || s.lastTick < oldest.lastTick) oldest = s;
    if (oldest) this.end(oldest, 'evicted');
  }

  #schedule(): void {
    const idle = this.#route.udp.idleTimeoutMs;
    const sweepMs = sweepIntervalMs(idle);
    // A datagram seen during tick k happened no earlier than the sweep that opened tick k, so a
    // session is idle for at least T once ceil(T / sweep) + 1 ticks have passed.
    this.#idleTicks = idle > 0 ? Math.ceil(idle / sweepMs) + 1 : Infinity;
    const budget = this.#route.udp.replyBudget;
    this.#budgetRatio = budget?.ratio ?? 0;
    if (budget) this.#budgetTicks = windowTicks(budget, sweepMs);
    if (sweepMs === this.#sweepMs && this.#sweepTimer) return;
    this.#sweepTimer?.cancel();
    this.#sweepMs = sweepMs;
    this.#sweepTimer = this.deps.clock.setInterval(() => this.#sweep(), sweepMs);
  }

  #sweep(): void {
    const tick = ++this.#tick;
    if (tick % this.#budgetTicks === 0) this.#budgetWindow++;
    const limit = this.#idleTicks;
    for (const s of this.#v4.values()) if (tick - s.lastTick >= limit) this.end(s, 'idle-timeout');
    for (const s of this.#other.values()) if (tick - s.lastTick >= limit) this.end(s, 'idle-timeout');
    this.#exchanges.compact();
    this.#flushDrops();
  }

  #flushDrops(): void {
    for (let i = 0; i < DROP_REASONS.length; i++) {
      const count = this.#drops[i]!;
      if (count === 0) continue;
      this.#drops[i] = 0;
      this.deps.events.emit({ type: 'datagrams-dropped', at: this.deps.clock.wallNow(), route: this.#route.name, reason: DROP_REASONS[i]!, count });
    }
  }
}

function limitSettings(route: RouteConfig) {
  const u = route.udp;
  return { maxPerRoute: u.maxSessions, maxPerSource: u.maxSessionsPerSource, rate: u.rate, ratePerSource: u.ratePerSource, sourcePrefix: route.sourcePrefix };
}

function dropsOf(ch: DatagramChannel | null): { dropped?: Partial<Record<DropReason, number>> } {
  const d = ch?.drops?.();
  return d ? { dropped: d } : {};
}
