import { canonicalIp, ipv4PortKey, type Endpoint } from '../core/address.js';
import type { Timer } from '../core/clock.js';
import { errnoCode, isSluiceError } from '../core/errors.js';
import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import { UdpProxyHeaders } from './udp-proxy-header.js';
import type { DropReason, EndReason, RejectReason } from '../observe/events.js';
import type { DatagramDialer } from '../upstream/dialer.js';
import type { ListenerReceiver } from '../datapath/udp-datapath.js';
import { UdpSession, type UdpSessionOwner } from './udp-session.js';
import { budgetAllows, budgetReceived, windowTicks } from '../core/reply-budget.js';
import type { OffloadEnd } from '../datapath/offload.js';
import { SessionOffloads } from './session-offload.js';
import { CompletedExchanges } from './completed-exchanges.js';
import { DropCounts } from './drop-counts.js';
import { SessionShell, type SessionSide, type ShellDeps } from './session-shell.js';
import type { UdpSessionPolicy } from './session-policy.js';

export interface UdpTableDeps extends ShellDeps {
  readonly dialer: DatagramDialer;
  readonly nextFlowId: () => number;
}

/**
 * Where a table's clients are: the listener socket of a route, or the tagged datagrams of an
 * agent's tunnel. `send` is on the per-datagram path: it must not allocate.
 */
export interface UdpClientSide {
  /** Sends one datagram back to the session's client (`s.replyAddress`, `s.key`, ...). */
  send(s: UdpSession, buf: Buffer): void;
  /** The address clients reached: the destination in PROXY headers sent for plain clients. */
  local(): Endpoint;
  /** The session's upstream channel opened (before it is used). */
  channelOpened?(s: UdpSession): void;
  /** The session's upstream channel was closed (the session ended, or ended while it opened). */
  channelClosed?(s: UdpSession): void;
  /** What the client side dropped by itself for `s` (a tunnel's send budget), for its record. */
  drops?(s: UdpSession): Partial<Record<DropReason, number>> | undefined;
  /** The client's side of `s` for the native batch (datapath/offload.ts), or null while it needs JavaScript. */
  offloadEnd?(s: UdpSession): OffloadEnd | null;
}

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
export class UdpSessionTable implements UdpSessionOwner, SessionSide<UdpSession>, ListenerReceiver {
  readonly #v4 = new Map<number, UdpSession>();
  readonly #other = new Map<string, UdpSession>();
  readonly #shell: SessionShell<UdpSessionPolicy, UdpSession>;
  readonly #exchanges = new CompletedExchanges();
  readonly #drops = new DropCounts();
  /** The policy in force; its `udp` block is read on the per-datagram path. */
  #policy: UdpSessionPolicy;
  #pp: UdpProxyHeaders | null;
  readonly #limitStep: (source: string) => RejectReason | undefined;
  #tick = 0;
  #idleTicks = 0;
  /** Reply budget ratio; 0 when the route has none. */
  #budgetRatio = 0;
  #budgetTicks = 1;
  /** Index of the current budget window: advanced on the sweep, read per datagram. */
  #budgetWindow = 0;
  #sweepMs = 0;
  #sweepTimer: Timer | undefined;
  /** Sessions forwarded in the native batch: folded on the sweep and on their JavaScript datagrams. */
  readonly #offloads: SessionOffloads;

  constructor(
    policy: UdpSessionPolicy,
    private readonly deps: UdpTableDeps,
    private readonly clients: UdpClientSide,
  ) {
    this.#policy = policy;
    this.#pp = policy.proxyProtocol ? new UdpProxyHeaders(policy.proxyProtocol) : null;
    this.#shell = new SessionShell(policy, 'udp', deps, this);
    this.#limitStep = (source) => this.#makeRoom(source);
    this.#offloads = new SessionOffloads(clients, this);
    this.#schedule();
  }

  get size(): number {
    return this.#v4.size + this.#other.size;
  }

  get policy(): UdpSessionPolicy {
    return this.#policy;
  }

  /** The live sessions, with what the native batch forwarded for them folded in (views read their counters). */
  sessions(): IterableIterator<UdpSession> {
    if (this.#offloads.size > 0) this.#offloads.foldAll();
    return [...this.#v4.values(), ...this.#other.values()][Symbol.iterator]();
  }

  flows(): Iterable<UdpSession> {
    return this.sessions();
  }

  opening(s: UdpSession): boolean {
    return s.state === 'opening';
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
    if (s.offload !== null) this.#offloads.fold(s);
    const prefix = s.prefix;
    if (buf.length + (prefix === null ? 0 : prefix.length) > this.#policy.udp.maxDatagramBytes) {
      this.#drops.tooBig++;
      return;
    }
    const bw = s.bwUp;
    if (bw !== null && !bw.tryTake(buf.length)) {
      this.#drops.bandwidth++;
      return;
    }
    s.lastTick = this.#tick;
    s.bytesFromClient += buf.length;
    s.packetsFromClient++;
    if (this.#budgetRatio !== 0) budgetReceived(s, buf.length, this.#budgetWindow);
    const ch = s.channel;
    if (ch !== null) {
      ch.send(buf, prefix);
      if (s.offloadTried !== this.#tick || s.offload !== null) this.#offloads.step(s);
    } else if (s.queue !== null && s.queue.length < this.#policy.udp.setupQueue) {
      s.queue.push(Buffer.from(buf)); // a datapath may reuse buf's memory once this call returns
    } else {
      this.#drops.setupQueueFull++;
    }
  }

  /** A route that accepts PROXY headers: the real client comes from a trusted sender's header. */
  #onProxied(buf: Buffer, address: string, port: number): void {
    const v = this.#pp!.inbound(buf, address);
    if (v === null) return this.#plain(buf, address, port);
    if (typeof v === 'string') {
      this.#drops.count(v);
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
    if (s.offload !== null) this.#offloads.fold(s);
    if (buf.length > this.#policy.udp.maxDatagramBytes) {
      this.#drops.tooBig++;
      return;
    }
    if (this.#budgetRatio !== 0 && !budgetAllows(s, buf.length, this.#budgetRatio, this.#budgetWindow)) {
      this.#drops.replyBudget++;
      return;
    }
    const bw = s.bwDown;
    if (bw !== null && !bw.tryTake(buf.length)) {
      this.#drops.bandwidth++;
      return;
    }
    s.lastTick = this.#tick;
    s.bytesToClient += buf.length;
    s.packetsToClient++;
    if (s.unanswered) {
      s.unanswered = false;
      this.#shell.limits.refund(s.source);
      this.#exchanges.answered(s);
    }
    if (s.prefixUntilReply) {
      s.prefixUntilReply = false;
      s.prefix = null;
    }
    this.clients.send(s, buf);
    if (s.offloadTried !== this.#tick || s.offload !== null) this.#offloads.step(s);
  }

  upstreamFailed(s: UdpSession, err: Error): void {
    if (isSluiceError(err, 'SLUICE_ERR_PEER_OFFLINE')) return this.end(s, 'peer-offline');
    if (isSluiceError(err, 'SLUICE_ERR_NO_HEALTHY_UPSTREAM')) return this.end(s, 'no-healthy-upstream');
    const code = errnoCode(err);
    this.end(s, code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? 'upstream-unreachable' : 'upstream-error');
  }

  /** The current sweep tick (read by session-offload.ts). */
  get tick(): number {
    return this.#tick;
  }

  /** The reply budget's ratio (0: none) and current window (read by session-offload.ts). */
  get replyRatio(): number {
    return this.#budgetRatio;
  }

  get replyWindow(): number {
    return this.#budgetWindow;
  }

  /** Counts a datagram the listener could not send back to a client. */
  countSendError(): void {
    this.#drops.sendError++;
  }

  /** The listener's report of the same (ListenerReceiver): one datagram lost, never the listener. */
  onSendError(): void {
    this.#drops.sendError++;
  }

  /** Applies new settings of the same listener: new sessions use them; idle timeout applies to live ones too. */
  update(policy: UdpSessionPolicy, admit: Admitter | undefined): void {
    this.#policy = policy;
    this.#pp = policy.proxyProtocol ? new UdpProxyHeaders(policy.proxyProtocol) : null;
    this.#shell.update(policy, admit);
    this.#schedule();
    this.#offloads.removeAll();
  }

  /**
   * Judges every live session again with the current admitter (admission/reverdict.ts). A session
   * still opening was never started: it is reported as refused; an open one ends with the reason.
   */
  reverdict(): ReverdictCount {
    return this.#shell.reverdict();
  }

  /** Refuses new clients from now on; resolves once the last session has ended. */
  drain(): Promise<void> {
    return this.#shell.drain();
  }

  /** Ends every session with `reason` and stops the sweep. Idempotent. */
  close(reason: EndReason): void {
    this.#shell.close(reason);
    this.#sweepTimer?.cancel();
    this.#sweepTimer = undefined;
    this.#flushDrops();
  }

  /** Ends `s` (idempotent); `detail` says which rule, for a verdict reason. */
  end(s: UdpSession, reason: EndReason, detail?: string): void {
    if (s.state === 'closed') return;
    const wasOpen = s.state === 'open';
    s.move('closed');
    if (s.offload !== null) this.#offloads.remove(s);
    const map = typeof s.key === 'number' ? this.#v4 : this.#other;
    if ((map as Map<unknown, UdpSession>).get(s.key) === s) (map as Map<unknown, UdpSession>).delete(s.key);
    const ch = s.channel;
    const dropped = wasOpen ? ch?.drops?.() ?? this.clients.drops?.(s) : undefined;
    if (ch !== null) {
      ch.close();
      this.clients.channelClosed?.(s);
    }
    s.queue = null;
    if (wasOpen) this.#shell.ended(s, reason, s.counters(), detail, dropped);
    this.#shell.released(s.source);
  }

  #create(key: number | string, address: string, port: number, replyAddress: string, replyPort: number, destination: Endpoint | undefined): UdpSession | undefined {
    const canon = canonicalIp(address);
    if (!canon) return undefined;
    const client: Endpoint = { address: canon.address, port, family: canon.family };
    const source = this.#shell.admit(client, this.#limitStep);
    if (source === undefined) return undefined;

    const { clock } = this.deps;
    const policy = this.#policy;
    const s = new UdpSession(this, this.deps.nextFlowId(), policy.name, client, key, replyAddress, replyPort, clock.now(), clock.wallNow(), this.#tick);
    s.origin = policy.origin;
    s.listenPort = policy.listenPort;
    s.source = source;
    const g = this.#shell.gatesFor(source);
    if (g !== undefined) {
      s.bwUp = g.up;
      s.bwDown = g.down;
    }
    if (this.#pp !== null) {
      s.prefix = this.#pp.outboundHeader(client, destination ?? this.clients.local());
      s.prefixUntilReply = s.prefix !== null && this.#pp.settings.udp === 'first';
    }
    if (typeof key === 'number') this.#v4.set(key, s);
    else this.#other.set(key, s);
    void this.#open(s);
    return s;
  }

  /** Opens the session's upstream channel, then sends what queued meanwhile. */
  async #open(s: UdpSession): Promise<void> {
    const shell = this.#shell;
    const dialedAt = this.deps.clock.now();
    try {
      const ch = await this.deps.dialer.open(this.#policy.upstream, s, { signal: shell.signal, client: s.client, local: this.clients.local() });
      this.clients.channelOpened?.(s);
      if (s.state === 'closed') {
        ch.close();
        this.clients.channelClosed?.(s);
        return;
      }
      s.channel = ch;
      s.upstream = ch.remote;
      s.move('open');
      shell.started(s, ch.remote, dialedAt);
      const queued = s.queue!;
      s.queue = null;
      for (let i = 0; i < queued.length && s.channel !== null && s.state === 'open'; i++) ch.send(queued[i]!, s.prefix);
    } catch (err) {
      const reason = shell.dialFailed(s, err as Error, dialedAt);
      this.#drops.noSession += s.queue?.length ?? 0;
      this.end(s, reason);
    }
  }

  /**
   * Admission's limit step for UDP: at the per-source or the route cap, a finished
   * request/response exchange that has been quiet for EXCHANGE_QUIET_MS (of this source, or of
   * any source at the route cap) is ended (`evicted`) to make room, at most once per cap, instead
   * of refusing the new client; with `onLimit: evict-lru`, the route cap ends the oldest session.
   */
  #makeRoom(source: string): RejectReason | undefined {
    const limits = this.#shell.limits;
    const evict = this.#policy.udp.onLimit === 'evict-lru';
    let limited = limits.admit(source, evict);
    const quietSince = this.#tick - Math.ceil(Math.min(EXCHANGE_QUIET_MS, this.#policy.idleTimeoutMs) / this.#sweepMs);
    for (let tries = 0; tries < 2 && (limited === 'limit-source-sessions' || limited === 'limit-route-sessions'); tries++) {
      const old = this.#exchanges.take(limited === 'limit-source-sessions' ? source : undefined, quietSince);
      if (old === undefined) break;
      this.end(old, 'evicted');
      limited = limits.admit(source, evict);
    }
    if (limited === undefined && evict && limits.atRouteCap) this.#evictOldest();
    return limited;
  }

  #evictOldest(): void {
    let oldest: UdpSession | undefined;
    for (const s of this.sessions()) if (oldest === undefined || s.lastTick < oldest.lastTick) oldest = s;
    if (oldest) this.end(oldest, 'evicted');
  }

  #schedule(): void {
    const idle = this.#policy.idleTimeoutMs;
    const sweepMs = sweepIntervalMs(idle);
    // A datagram seen during tick k happened no earlier than the sweep that opened tick k, so a
    // session is idle for at least T once ceil(T / sweep) + 1 ticks have passed.
    this.#idleTicks = idle > 0 ? Math.ceil(idle / sweepMs) + 1 : Infinity;
    const budget = this.#policy.udp.replyBudget;
    this.#budgetRatio = budget?.ratio ?? 0;
    if (budget) this.#budgetTicks = windowTicks(budget, sweepMs);
    if (sweepMs === this.#sweepMs && this.#sweepTimer) return;
    this.#sweepTimer?.cancel();
    this.#sweepMs = sweepMs;
    this.#sweepTimer = this.deps.clock.setInterval(() => this.#sweep(), sweepMs);
  }

  #sweep(): void {
    // What the batch forwarded since the last sweep happened during the tick that ends now.
    this.#offloads.sweep();
    const tick = ++this.#tick;
    if (tick % this.#budgetTicks === 0) {
      this.#budgetWindow++;
      this.#offloads.allowances();
    }
    const limit = this.#idleTicks;
    for (const s of this.#v4.values()) if (tick - s.lastTick >= limit) this.end(s, 'idle-timeout');
    for (const s of this.#other.values()) if (tick - s.lastTick >= limit) this.end(s, 'idle-timeout');
    this.#exchanges.compact();
    this.#flushDrops();
  }

  #flushDrops(): void {
    this.#drops.flush(this.deps.events, this.deps.clock, this.#policy.name);
  }
}
