import net from 'node:net';
import { LRUCache } from 'lru-cache';
import { formatListen, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { RouteConfig, RouteOrigin } from '../config/types.js';
import { AdmissionLimits, type LimitSettings } from '../admission/limits.js';
import { PendingSlots, type PendingSlotsOptions } from '../admission/pending-slots.js';
import { RefusalHold } from '../admission/refusal-hold.js';
import type { EndReason, EventStream, FlowRef, RejectReason } from '../observe/events.js';
import { relayTcp } from '../session/tcp-relay.js';
import { joinInDatapath } from '../session/stream-pair.js';
import { jsStreamDatapath } from '../datapath/js-stream-datapath.js';
import type { StreamConn, StreamDatapath, StreamListener } from '../datapath/stream-datapath.js';
import { isSocketDialer } from '../upstream/direct/socket-dial.js';
import { bandwidthLimiterFor, type BandwidthLimiter, type BucketPair } from '../admission/bandwidth-limiter.js';
import { applyAdmitter, eventReporter, type AdmitVerdict, type Admitter, type VerdictReporter } from '../admission/admitter.js';
import { rejudge, type JudgedFlow, type ReverdictCount } from '../admission/reverdict.js';
import { firstBytesAreClean, readProxyHeader, sniffFirstBytes } from './proxy-header-reader.js';
import { TcpProxyHeaders } from './tcp-proxy-header.js';
import { isHeldConn, readHeldProxyHeader } from './held-proxy-header.js';
import type { StreamDialer } from '../upstream/dialer.js';
import type { RouteRuntime, SessionInfo } from './route.js';

export interface TcpRouteDeps {
  readonly clock: Clock;
  readonly dialer: StreamDialer;
  readonly events: EventStream;
  readonly nextFlowId: () => number;
  readonly admit?: Admitter;
  /** Bandwidth buckets this route shares with others (an agent's total on the gateway); absent = none. */
  readonly sharedBandwidth?: BucketPair;
  /** How connections are accepted, dialed and joined (default: Node's net). */
  readonly streamDatapath?: StreamDatapath;
}

/** `proxyProtocol.untrustedWait` when a route's settings do not say (the config default). */
const DEFAULT_UNTRUSTED_WAIT_MS = 50;

class TcpConnection implements FlowRef, JudgedFlow {
  readonly proto = 'tcp' as const;
  state: 'dialing' | 'open' | 'closed' = 'dialing';
  upstream: Endpoint | undefined;
  stop: ((reason: EndReason) => void) | undefined;
  origin: RouteOrigin | undefined;
  /** The per-source key admission counted this connection under (AdmissionLimits.keyOf). */
  source = '';
  wouldEndNoted = false;
  /** The rule that ended it, when a verdict did. */
  endDetail: string | undefined;
  constructor(
    readonly id: number,
    readonly route: string,
    readonly client: Endpoint,
    readonly down: StreamConn,
    readonly startedAt: number,
    readonly startedWall: number,
  ) {}
}

/** A TCP listener: admits each connection, dials the upstream, then relays with half-close. */
export class TcpRoute implements RouteRuntime {
  readonly #conns = new Set<TcpConnection>();
  readonly #limits: AdmissionLimits;
  #bandwidth: BandwidthLimiter | null;
  readonly #abort = new AbortController();
  #route: RouteConfig;
  #admit: Admitter | undefined;
  #pp: TcpProxyHeaders | null;
  /** Trusted senders whose PROXY header is not read yet (fair share per source, pending-slots.ts). */
  readonly #pendingHeaders: PendingSlots;
  /** Senders that gave a valid header before: their newcomers may evict others when full. */
  readonly #goodSenders = new LRUCache<string, true>({ max: 1024 });
  /** Senders refused for want of a pending slot, held unread so they cannot reconnect in a loop. */
  readonly #refusedHeaders: RefusalHold;
  readonly #reporter: VerdictReporter;
  #draining = false;
  #onEmpty: (() => void)[] = [];
  #closed: Promise<void> | undefined;
  #serverClosed: Promise<void> = Promise.resolve();

  private constructor(
    route: RouteConfig,
    private readonly listener: StreamListener,
    readonly local: Endpoint,
    private readonly deps: TcpRouteDeps,
  ) {
    this.#route = route;
    this.#admit = deps.admit;
    this.#pp = route.proxyProtocol ? new TcpProxyHeaders(route.proxyProtocol) : null;
    this.#limits = new AdmissionLimits(limitSettings(route), deps.clock);
    this.#pendingHeaders = new PendingSlots(pendingSettings(route));
    this.#refusedHeaders = new RefusalHold({ holdMs: route.proxyProtocol?.headerTimeoutMs ?? 5000, max: 16_384, maxPerSource: pendingSettings(route).maxPerSource }, deps.clock);
    this.#bandwidth = bandwidthLimiterFor(route.bandwidth, deps.clock, deps.sharedBandwidth);
    this.#reporter = eventReporter(deps.events, deps.clock, () => this.#route.name, 'tcp');
  }

  static async start(route: RouteConfig, deps: TcpRouteDeps): Promise<TcpRoute> {
    // A listen host that is a name (not an IP literal) is bound by Node's net, which resolves it.
    const datapath = net.isIP(route.listen.host) ? deps.streamDatapath ?? jsStreamDatapath : jsStreamDatapath;
    let self: TcpRoute | undefined;
    let listener: StreamListener;
    try {
      listener = await datapath.listen(route.listen.host, route.listen.port, (conn) => (self ? self.#accept(conn) : conn.destroy()));
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on ${formatListen(route.listen)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    self = new TcpRoute(route, listener, listener.local, { ...deps, streamDatapath: datapath });
    return self;
  }

  get name(): string {
    return this.#route.name;
  }

  get config(): RouteConfig {
    return this.#route;
  }

  get active(): number {
    return this.#conns.size;
  }

  update(route: RouteConfig, admit: Admitter | undefined): void {
    this.#route = route;
    this.#admit = admit;
    this.#pp = route.proxyProtocol ? new TcpProxyHeaders(route.proxyProtocol) : null;
    this.#limits.update(limitSettings(route));
    this.#pendingHeaders.update(pendingSettings(route));
    if (this.#bandwidth === null) this.#bandwidth = bandwidthLimiterFor(route.bandwidth, this.deps.clock, this.deps.sharedBandwidth);
    else if (route.bandwidth === undefined && this.deps.sharedBandwidth === undefined) this.#bandwidth = null;
    else this.#bandwidth.update(route.bandwidth ?? {});
  }

  /** Judges every live connection again with the current admitter (admission/reverdict.ts). */
  reverdict(): ReverdictCount {
    const r = this.#reporter;
    return rejudge(this.#conns, this.#admit, this.#route.name, (c, v) => this.#endByVerdict(c, v), (c, v) => r.wouldEnd(c, v));
  }

  /** A connection still dialing was never started: it is reported as refused; an open one ends with the reason. */
  #endByVerdict(c: TcpConnection, v: AdmitVerdict): void {
    if (c.state === 'dialing') this.#reporter.rejected(c.client, v);
    c.endDetail = v.detail;
    this.#finish(c, v.reason);
  }

  drain(): Promise<void> {
    if (!this.#draining) {
      this.#draining = true;
      this.#refusedHeaders.close();
      this.#serverClosed = this.listener.close();
    }
    const empty = this.#conns.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#onEmpty.push(resolve));
    return Promise.all([empty, this.#serverClosed]).then(() => {});
  }

  /** Ends every connection with `reason`; resolves once all are closed and the listener is released. */
  close(reason: EndReason): Promise<void> {
    this.#closed ??= (async () => {
      this.#abort.abort();
      const empty = this.drain();
      for (const c of this.#conns) this.#finish(c, reason);
      await empty;
    })();
    return this.#closed;
  }

  sessions(): SessionInfo[] {
    return [...this.#conns].map((c) => ({
      id: c.id,
      route: c.route,
      proto: 'tcp',
      client: c.client,
      upstream: c.upstream,
      state: c.state,
      startedAt: c.startedWall,
      origin: c.origin,
      bytesFromClient: c.down.bytesRead,
      packetsFromClient: 0,
      bytesToClient: c.down.bytesWritten,
      packetsToClient: 0,
    }));
  }

  #accept(down: StreamConn): void {
    const peer = down.remote;
    if (!peer) {
      down.destroy();
      return;
    }
    const pp = this.#pp;
    if (pp === null || !pp.trust.trusts(peer.address)) {
      this.#admitAndDial(down, peer, undefined, pp !== null && !pp.trust.empty);
      return;
    }
    let evicted = false;
    const pending = this.#pendingHeaders.admit(peer.address, this.#goodSenders.has(peer.address), () => {
      evicted = true;
      down.destroy();
    });
    if (!pending.ok) {
      this.#refusedHeaders.refuse(down.socket(), peer.address);
      return this.#report(peer, 'limit-route-sessions', 'too many PROXY headers pending');
    }
    const { headerTimeoutMs, maxHeaderBytes } = pp.settings;
    void (isHeldConn(down) ? readHeldProxyHeader(down, headerTimeoutMs, maxHeaderBytes) : readProxyHeader(down.socket(), headerTimeoutMs, maxHeaderBytes)).then((r) => {
      pending.slot.release();
      if (evicted) return this.#reject(down, peer, 'limit-route-sessions', 'evicted while its PROXY header was pending');
      if (!r.ok) return this.#reject(down, peer, r.reason);
      this.#goodSenders.set(peer.address, true);
      const a = r.header.addresses;
      this.#admitAndDial(down, a ? a.source : peer, a?.destination, false);
    });
  }

  #reject(down: StreamConn, client: Endpoint, reason: RejectReason, detail?: string): void {
    this.#report(client, reason, detail);
    down.destroy();
  }

  #report(client: Endpoint, reason: RejectReason, detail?: string): void {
    const { clock, events } = this.deps;
    events.emit({ type: 'session-rejected', at: clock.wallNow(), route: this.#route.name, proto: 'tcp', client, reason, ...(detail ? { detail } : {}) });
  }

  /**
   * `client` is the real client (from a trusted header, or the peer); `destination` what the
   * header said the client connected to. `sniff`: an untrusted peer on a route that accepts
   * headers, whose first bytes must not be a PROXY header. Admission runs first (so caps bound
   * the connections waiting here); then, with `untrustedWaitMs`, the first bytes are awaited
   * before dialing, so a header from an untrusted sender is refused without an upstream
   * connection. A client that stays silent past the wait (a server-speaks-first protocol) is
   * dialed, and its first bytes are still checked before any reaches the upstream.
   */
  #admitAndDial(down: StreamConn, client: Endpoint, destination: Endpoint | undefined, sniff: boolean): void {
    const { clock } = this.deps;
    if (this.#draining || down.destroyed) return this.#reject(down, client, 'draining');
    if (applyAdmitter(this.#admit, client, this.#route.name, this.#reporter) !== undefined) {
      down.destroy();
      return;
    }
    const source = this.#limits.keyOf(client);
    const limited = this.#limits.admit(source);
    if (limited) return this.#reject(down, client, limited, source === client.address ? undefined : `source ${source}`);

    this.#limits.acquire(source);
    const route = this.#route;
    const c = new TcpConnection(this.deps.nextFlowId(), route.name, client, down, clock.now(), clock.wallNow());
    c.origin = route.origin;
    c.source = source;
    this.#conns.add(c);
    const waitMs = this.#pp?.settings.untrustedWaitMs ?? DEFAULT_UNTRUSTED_WAIT_MS;
    if (!sniff || waitMs <= 0) return this.#dial(c, destination, sniff);
    void sniffFirstBytes(down.socket(), waitMs).then((seen) => {
      if (c.state === 'closed') return;
      if (seen === 'header') {
        c.state = 'closed';
        this.#forget(c);
        return this.#reject(down, client, 'proxy-header-untrusted');
      }
      if (down.destroyed) return this.#finish(c, 'client-closed');
      this.#dial(c, destination, seen === 'undecided');
    });
  }

  /** Dials the upstream for an admitted connection and starts the relay; `sniff` as above, after the dial. */
  #dial(c: TcpConnection, destination: Endpoint | undefined, sniff: boolean): void {
    const { clock, events } = this.deps;
    const { down, client } = c;
    const route = this.#route;
    const datapath = this.deps.streamDatapath ?? jsStreamDatapath;
    const dialer = this.deps.dialer;
    const opts = { signal: this.#abort.signal, timeoutMs: route.tcp.connectTimeoutMs, client, local: destination ?? down.local };
    // Upstream connections of the route's own datapath where the upstream is a plain socket and
    // the pair can be joined there (no bandwidth pacing, no sniff pending); a Node stream elsewhere.
    const native = datapath.kind === 'native' && !sniff && this.#bandwidth === null && isSocketDialer(dialer) ? dialer.dialConn(route.upstream, opts, datapath) : undefined;
    (native?.then(({ conn, remote }) => ({ stream: conn, remote })) ?? dialer.dial(route.upstream, opts)).then(
      ({ stream, remote }) => {
        if (c.state === 'closed' || down.destroyed) {
          stream.destroy();
          this.#finish(c, 'client-closed');
          return;
        }
        c.state = 'open';
        c.upstream = remote;
        events.emit({ type: 'session-started', at: clock.wallNow(), flow: c, upstream: remote, startedAt: c.startedWall });
        events.emit({ type: 'dial-ok', at: clock.wallNow(), flow: c, latencyMs: clock.now() - c.startedAt });
        const header = this.#pp?.outbound(client, destination ?? down.local);
        if (header) void ('writeFirst' in stream ? stream.writeFirst(header) : stream.write(header));
        const clean = sniff ? firstBytesAreClean(down.socket()) : undefined;
        if (clean) void clean.then((ok) => ok || this.#reject(down, client, 'proxy-header-untrusted'));
        const bandwidth = this.#bandwidth === null ? undefined : { gates: this.#bandwidth.gatesFor(c.source), clock };
        const onDone = (o: { reason: EndReason; bytesFromClient: number; bytesToClient: number }) => this.#ended(c, o.reason, o.bytesFromClient, o.bytesToClient);
        const joined = 'writeFirst' in stream && !clean && !bandwidth ? joinInDatapath(datapath, down, stream, route.tcp.idleTimeoutMs, onDone) : undefined;
        c.stop = joined ?? relayTcp(down.socket(), 'writeFirst' in stream ? stream.socket() : stream, route.tcp.idleTimeoutMs, onDone, clean, bandwidth);
      },
      (err: SluiceError) => {
        if (this.#abort.signal.aborted) return this.#finish(c, 'shutdown');
        events.emit({
          type: 'dial-error',
          at: clock.wallNow(),
          flow: c,
          upstream: `${route.upstream.host}:${route.upstream.port}`,
          code: err.code ?? 'ERROR',
          message: err.message,
          latencyMs: clock.now() - c.startedAt,
        });
        this.#finish(c, err.code === 'SLUICE_ERR_PEER_OFFLINE' ? 'peer-offline' : 'upstream-unreachable');
      },
    );
  }

  /** Ends a connection from outside the relay (shutdown, dial failure). */
  #finish(c: TcpConnection, reason: EndReason): void {
    if (c.stop) return c.stop(reason);
    if (c.state === 'closed') return;
    c.state = 'closed';
    c.down.destroy();
    this.#forget(c);
  }

  #ended(c: TcpConnection, reason: EndReason, bytesFromClient: number, bytesToClient: number): void {
    c.state = 'closed';
    const { clock } = this.deps;
    this.deps.events.emit({
      type: 'session-ended',
      at: clock.wallNow(),
      flow: c,
      upstream: c.upstream,
      startedAt: c.startedWall,
      durationMs: Math.max(0, Math.round(clock.now() - c.startedAt)),
      reason,
      counters: { bytesFromClient, packetsFromClient: 0, bytesToClient, packetsToClient: 0 },
      ...(c.endDetail ? { detail: c.endDetail } : {}),
    });
    this.#forget(c);
  }

  #forget(c: TcpConnection): void {
    if (!this.#conns.delete(c)) return;
    this.#limits.release(c.source);
    if (this.#conns.size === 0) for (const done of this.#onEmpty.splice(0)) done();
  }
}

function pendingSettings(route: RouteConfig): PendingSlotsOptions {
  const max = Math.max(1, route.tcp.maxConnections || 4096);
  return { max, maxPerSource: Math.min(max, route.tcp.maxConnectionsPerSource || max) };
}

function limitSettings(route: RouteConfig): LimitSettings {
  const t = route.tcp;
  return { maxPerRoute: t.maxConnections, maxPerSource: t.maxConnectionsPerSource, rate: t.rate, ratePerSource: t.ratePerSource, sourcePrefix: route.sourcePrefix };
}
