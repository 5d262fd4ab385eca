import { canonicalIp, ipv4PortKey, type Endpoint } from '../core/address.js';
import { errnoCode, isSluiceError } from '../core/errors.js';
import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import { UdpProxyHeaders } from './udp-proxy-header.js';
import type { EndReason, RejectReason } from '../observe/events.js';
import type { DatagramDialer } from '../upstream/dialer.js';
import type { ListenerReceiver } from '../datapath/udp-datapath.js';
import { UdpSession, type UdpSessionOwner } from './udp-session.js';
import { budgetAllows, budgetReceived } from '../core/reply-budget.js';
import { SessionOffloads } from './session-offload.js';
import { CompletedExchanges } from './completed-exchanges.js';
import { DropCounts } from './drop-counts.js';
import { SessionShell, type SessionSide, type ShellDeps } from './session-shell.js';
import type { UdpSessionPolicy } from './session-policy.js';
import type { UdpClientSide } from './udp-client-side.js';
import { SweepTicks } from './udp-sweep-ticks.js';
import { SessionsByKey } from './sessions-by-key.js';
import { makeRoom } from './udp-make-room.js';
import { StringPool } from './string-pool.js';

export type { UdpClientSide };
export { sweepIntervalMs } from './udp-sweep-ticks.js';

export interface UdpTableDeps extends ShellDeps {
  readonly dialer: DatagramDialer;
  readonly nextFlowId: () => number;
}

/**
 * The per-datagram path of a UDP route and its session table: one session per client ip:port,
 * each with its own upstream channel. Admission runs once, when a new client's first datagram
 * arrives, before any upstream resource is spent. Idle sessions are found by a periodic sweep
 * over coarse ticks, so the per-datagram path touches no timer and allocates nothing.
 */
export class UdpSessionTable implements UdpSessionOwner, SessionSide<UdpSession>, ListenerReceiver {
  readonly #live = new SessionsByKey();
  readonly #shell: SessionShell<UdpSessionPolicy, UdpSession>;
  readonly #exchanges = new CompletedExchanges();
  readonly #drops = new DropCounts();
  /** Address strings shared by the sessions (one copy per address, not one per session). */
  readonly #strings = new StringPool();
  /** The policy in force; its `udp` block is read on the per-datagram path. */
  #policy: UdpSessionPolicy;
  #pp: UdpProxyHeaders | null;
  readonly #limitStep: (source: string) => RejectReason | undefined;
  /** Sweep ticks, the idle limit and the reply budget's window (read per datagram, advanced by the sweep). */
  readonly #t: SweepTicks;
  /** Sessions forwarded in the native batch: folded on the sweep and on their JavaScript datagrams. */
  readonly #offloads: SessionOffloads;
  /** Wall-clock ms when the table was made: its sessions keep their start as a small offset from it. */
  readonly wallEpoch: number;

  constructor(
    policy: UdpSessionPolicy,
    private readonly deps: UdpTableDeps,
    private readonly clients: UdpClientSide,
  ) {
    this.#policy = policy;
    this.wallEpoch = Math.floor(deps.clock.wallNow());
    this.#pp = policy.proxyProtocol ? new UdpProxyHeaders(policy.proxyProtocol) : null;
    this.#shell = new SessionShell(policy, 'udp', deps, this);
    this.#limitStep = (source) => makeRoom(source, this.#shell.limits, this.#exchanges, this.#policy, this.#t.tick, this.#t.sweepMs, this);
    this.#offloads = new SessionOffloads(clients, this);
    this.#t = new SweepTicks(deps.clock, () => this.#sweep());
    this.#schedule();
  }

  get size(): number {
    return this.#live.size;
  }

  get policy(): UdpSessionPolicy {
    return this.#policy;
  }

  /** The live session of client key `key` (UdpSession.key), if any. */
  find(key: number | string): UdpSession | undefined {
    return this.#live.get(key);
  }

  /** The live sessions, with what the native batch forwarded for them folded in (views read their counters). */
  sessions(): IterableIterator<UdpSession> {
    if (this.#offloads.size > 0) this.#offloads.foldAll();
    return this.#live.list()[Symbol.iterator]();
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
    const s = this.#pp !== null && this.#pp.receives ? undefined : this.#live.v4(ipv4 * 65536 + port);
    if (s !== undefined) this.#fromClient(s, buf);
    else this.onDatagram(buf, `${ipv4 >>> 24}.${(ipv4 >>> 16) & 255}.${(ipv4 >>> 8) & 255}.${ipv4 & 255}`, port);
  }

  /** The datapath saw `address`:`port` fill the listener's share of the batch again and again. */
  onHeavySource(address: string, port: number): void {
    if (this.clients.heavySource === undefined || (this.#pp !== null && this.#pp.receives)) return;
    const k = ipv4PortKey(address, port);
    const s = k >= 0 ? this.#live.v4(k) : this.#live.get(`${address}|${port}`);
    if (s === undefined) return;
    if (s.offload !== null) this.#offloads.fold(s); // its count includes what the batch forwarded
    this.clients.heavySource(s);
  }

  #plain(buf: Buffer, address: string, port: number): void {
    const k = ipv4PortKey(address, port);
    let s = k >= 0 ? this.#live.v4(k) : this.#live.get(`${address}|${port}`);
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
    s.lastTick = this.#t.tick;
    s.bytesFromClient += buf.length;
    s.packetsFromClient++;
    if (this.#t.budgetRatio !== 0) budgetReceived(s, buf.length, this.#t.budgetWindow);
    const ch = s.channel;
    if (ch !== null) {
      ch.send(buf, prefix);
      if (s.offloadTried !== this.#t.tick || s.offload !== null) this.#offloads.step(s);
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
    let s = this.#live.get(key);
    if (s === undefined) {
      s = this.#create(key, clientAddr, clientPort, address, port, v.destination);
      if (s === undefined) return;
      // Its replies go to the sender, which may move: the key stays the header's client.
      s.pinKey();
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
    if (this.#t.budgetRatio !== 0 && !budgetAllows(s, buf.length, this.#t.budgetRatio, this.#t.budgetWindow)) {
      this.#drops.replyBudget++;
      return;
    }
    const bw = s.bwDown;
    if (bw !== null && !bw.tryTake(buf.length)) {
      this.#drops.bandwidth++;
      return;
    }
    s.lastTick = this.#t.tick;
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
    if (s.offloadTried !== this.#t.tick || s.offload !== null) this.#offloads.step(s);
  }

  upstreamFailed(s: UdpSession, err: Error): void {
    if (isSluiceError(err, 'SLUICE_ERR_PEER_OFFLINE')) return this.end(s, 'peer-offline');
    if (isSluiceError(err, 'SLUICE_ERR_NO_HEALTHY_UPSTREAM')) return this.end(s, 'no-healthy-upstream');
    const code = errnoCode(err);
    this.end(s, code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? 'upstream-unreachable' : 'upstream-error');
  }

  /** The current sweep tick (read by session-offload.ts). */
  get tick(): number {
    return this.#t.tick;
  }

  /** The reply budget's ratio (0: none) and current window (read by session-offload.ts). */
  get replyRatio(): number {
    return this.#t.budgetRatio;
  }

  get replyWindow(): number {
    return this.#t.budgetWindow;
  }

  /** Counts datagrams (one by default) that could not be sent: back to a client, or in the native batch. */
  countSendError(n = 1): void {
    this.#drops.sendError += n;
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
    this.#t.stop();
    this.#flushDrops();
  }

  /** Ends `s` (idempotent); `detail` says which rule, for a verdict reason. */
  end(s: UdpSession, reason: EndReason, detail?: string): void {
    if (s.state === 'closed') return;
    const wasOpen = s.state === 'open';
    s.move('closed');
    if (s.offload !== null) this.#offloads.remove(s);
    this.#live.remove(s);
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
    const pool = this.#strings;
    const client: Endpoint = { address: pool.intern(canon.address), port, family: canon.family };
    const admitted = this.#shell.admit(client, this.#limitStep);
    if (admitted === undefined) return undefined;
    const source = pool.intern(admitted);
    replyAddress = pool.intern(replyAddress);

    const { clock } = this.deps;
    const policy = this.#policy;
    // Whole milliseconds: a small integer in the session, not a boxed double (records round durations anyway).
    const s = new UdpSession(this, this.deps.nextFlowId(), policy.name, client, key, replyAddress, replyPort, Math.floor(clock.now()), clock.wallNow(), this.#t.tick);
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
    this.#live.add(s);
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

  #schedule(): void {
    this.#t.schedule(this.#policy.idleTimeoutMs, this.#policy.udp.replyBudget);
  }

  #sweep(): void {
    // What the batch forwarded since the last sweep happened during the tick that ends now.
    this.#offloads.sweep();
    this.clients.swept?.(this.#live, this.#t.sweepMs, this.#t.tick);
    if (this.#t.advance()) this.#offloads.allowances();
    const tick = this.#t.tick;
    const limit = this.#t.idleTicks;
    this.#live.forEach((s) => {
      if (tick - s.lastTick >= limit) this.end(s, 'idle-timeout');
    });
    this.#exchanges.compact();
    this.#flushDrops();
  }

  #flushDrops(): void {
    this.#drops.flush(this.deps.events, this.deps.clock, this.#policy.name);
  }
}
