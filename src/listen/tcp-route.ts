import net from 'node:net';
import type { Duplex } from 'node:stream';
import { formatListen, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { EndReason, EventStream, RejectReason } from '../observe/events.js';
import { relayTcp } from '../session/tcp-relay.js';
import { joinInDatapath } from '../session/stream-pair.js';
import { jsStreamConn, jsStreamDatapath } from '../datapath/js-stream-datapath.js';
import type { StreamConn, StreamDatapath, StreamListener } from '../datapath/stream-datapath.js';
import { isSocketDialer } from '../upstream/direct/socket-dial.js';
import type { BucketPair } from '../admission/bandwidth-limiter.js';
import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import { SessionShell, type PooledLimits } from '../session/session-shell.js';
import { FlowSlots } from '../session/flow-slots.js';
import { tcpPolicyOf, type ListenerConfig, type TcpSessionPolicy } from '../session/session-policy.js';
import { firstBytesAreClean, sniffFirstBytes } from './proxy-header-reader.js';
import { TcpProxyHeaders } from './tcp-proxy-header.js';
import { PendingHeaders } from './pending-headers.js';
import { sessionInfoOf, TcpConnection } from './tcp-connection.js';
import type { ConnRelaying, SocketRelaying, StreamDialer } from '../upstream/dialer.js';
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
  /** Caps, rates and bandwidth shared with the other ports of a port range (range-route.ts). */
  readonly pooled?: PooledLimits;
}

/** `proxyProtocol.untrustedWait` when a route's settings do not say (the config default). */
const DEFAULT_UNTRUSTED_WAIT_MS = 50;

/**
 * A TCP listener on the session shell (session/session-shell.ts): each connection is accepted
 * (`#accept`: PROXY header, admission), its upstream dialed (`#dial`), then the two relayed with
 * half-close (`#relay`). The shell does admission, limits, events, reverdict and drain.
 */
export class TcpRoute<C extends ListenerConfig = ListenerConfig> implements RouteRuntime<C> {
  readonly #conns = new FlowSlots<TcpConnection>();
  readonly #shell: SessionShell<TcpSessionPolicy, TcpConnection>;
  #route: C;
  #pp: TcpProxyHeaders | null;
  /** Trusted senders' connections while their PROXY header is read (pending-headers.ts). */
  readonly #pendingHeaders: PendingHeaders;
  #closed: Promise<void> | undefined;
  #serverClosed: Promise<void> | undefined;

  private constructor(
    route: C,
    /** Absent for a route on a shared listener (sni-listener.ts), which hands it connections through `adopt`. */
    private readonly listener: StreamListener | undefined,
    readonly local: Endpoint,
    private readonly deps: TcpRouteDeps,
  ) {
    this.#route = route;
    const policy = tcpPolicyOf(route);
    const conns = this.#conns;
    this.#shell = new SessionShell(policy, 'tcp', deps, {
      get size() {
        return conns.size;
      },
      flows: () => conns,
      opening: (c) => c.state === 'dialing',
      end: (c, reason, detail) => {
        if (detail !== undefined) c.endDetail = detail;
        this.#finish(c, reason);
      },
    });
    this.#pp = route.proxyProtocol ? new TcpProxyHeaders(route.proxyProtocol) : null;
    this.#pendingHeaders = new PendingHeaders(policy, route.proxyProtocol?.headerTimeoutMs, deps.clock);
  }

  static async start<C extends ListenerConfig>(route: C, deps: TcpRouteDeps): Promise<TcpRoute<C>> {
    // A listen host that is a name (not an IP literal) is bound by Node's net, which resolves it.
    const datapath = net.isIP(route.listen.host) ? deps.streamDatapath ?? jsStreamDatapath : jsStreamDatapath;
    let self: TcpRoute<C> | undefined;
    let listener: StreamListener;
    try {
      listener = await datapath.listen(route.listen.host, route.listen.port, (conn) => (self ? self.#accept(conn) : conn.destroy()));
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on ${formatListen(route.listen)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    self = new TcpRoute(route, listener, listener.local, { ...deps, streamDatapath: datapath });
    return self;
  }

  /**
   * A route without a listener of its own: a shared listener (sni-listener.ts) that bound `local`
   * hands it connections. Those are Node sockets (the listener read their ClientHello through
   * Node and put it back), so such a route runs on the js stream datapath whatever the node's is.
   */
  static attach<C extends ListenerConfig>(route: C, deps: TcpRouteDeps, local: Endpoint): TcpRoute<C> {
    return new TcpRoute(route, undefined, local, { ...deps, streamDatapath: jsStreamDatapath });
  }

  /**
   * A connection a shared listener accepted, read the PROXY header (giving `client` and
   * `destination`) and ClientHello of, and put those ClientHello bytes back: admitted and dialed
   * like one of this route's own.
   */
  adopt(down: net.Socket, client: Endpoint, destination: Endpoint | undefined): void {
    this.#admitAndDial(jsStreamConn(down), client, destination, false);
  }

  get name(): string {
    return this.#route.name;
  }

  get config(): C {
    return this.#route;
  }

  get active(): number {
    return this.#conns.size;
  }

  update(route: C, admit: Admitter | undefined): void {
    this.#route = route;
    const policy = tcpPolicyOf(route);
    this.#pp = route.proxyProtocol ? new TcpProxyHeaders(route.proxyProtocol) : null;
    this.#shell.update(policy, admit);
    this.#pendingHeaders.update(policy);
  }

  /** Judges every live connection again; one still dialing was never started and is reported as refused. */
  reverdict(): ReverdictCount {
    return this.#shell.reverdict();
  }

  drain(): Promise<void> {
    if (this.#serverClosed === undefined) {
      this.#pendingHeaders.close();
      this.#serverClosed = this.listener ? this.listener.close() : Promise.resolve();
    }
    return Promise.all([this.#shell.drain(), this.#serverClosed]).then(() => {});
  }

  /** Ends every connection with `reason`; resolves once all are closed and the listener is released. */
  close(reason: EndReason): Promise<void> {
    this.#closed ??= (async () => {
      const empty = this.drain();
      this.#shell.close(reason);
      await empty;
    })();
    return this.#closed;
  }

  /** Oldest first (flow ids grow with time): a page of them (admin views) shows the longest-lived. */
  sessions(): SessionInfo[] {
    return [...this.#conns].sort((a, b) => a.id - b.id).map(sessionInfoOf);
  }

  /** The accept seam: one client connection, unread, from the listener's stream datapath. */
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
    const { headerTimeoutMs, maxHeaderBytes } = pp.settings;
    const reading = this.#pendingHeaders.read(down, peer, headerTimeoutMs, maxHeaderBytes, (r) => {
      if (r === 'evicted') return this.#reject(down, peer, 'limit-route-sessions', 'evicted while its PROXY header was pending');
      if (!r.ok) return this.#reject(down, peer, r.reason);
      const a = r.header.addresses;
      this.#admitAndDial(down, a ? a.source : peer, a?.destination, false);
    });
    if (!reading) this.#shell.rejected(peer, 'limit-route-sessions', 'too many PROXY headers pending');
  }

  #reject(down: StreamConn, client: Endpoint, reason: RejectReason, detail?: string): void {
    this.#shell.rejected(client, reason, detail);
    down.destroy();
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
    if (down.destroyed) return this.#reject(down, client, 'draining');
    const source = this.#shell.admit(client);
    if (source === undefined) {
      down.destroy();
      return;
    }
    const policy = this.#shell.policy;
    const c = new TcpConnection(this.deps.nextFlowId(), policy.name, client, down, clock.now(), clock.wallNow());
    c.origin = policy.origin;
    c.listenPort = policy.listenPort;
    c.source = source;
    this.#conns.add(c);
    const waitMs = this.#pp?.settings.untrustedWaitMs ?? DEFAULT_UNTRUSTED_WAIT_MS;
    if (!sniff || waitMs <= 0) return this.#dial(c, destination, sniff);
    void sniffFirstBytes(down.socket(), { clock, timeoutMs: waitMs }).then((seen) => {
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

  /** The dial seam: the upstream of an admitted connection, under the policy in force now. */
  #dial(c: TcpConnection, destination: Endpoint | undefined, sniff: boolean): void {
    const shell = this.#shell;
    const policy = shell.policy;
    const { down, client } = c;
    const datapath = this.deps.streamDatapath ?? jsStreamDatapath;
    const dialer = this.deps.dialer;
    // Upstream connections of the route's own datapath where the upstream is a plain socket and
    // the pair can be joined there (no bandwidth pacing, no sniff pending), dialed without a
    // promise; a Node stream elsewhere. Without a PROXY header to send or a range's pooled
    // bandwidth, the datapath may join the two at connect (DialJoin): #relay then only takes note.
    const native = datapath.kind === 'native' && !sniff && !shell.paced && isSocketDialer(dialer);
    const join = native && !this.#pp?.settings.send && !this.deps.pooled?.bandwidth ? c : undefined;
    c.idleTimeoutMs = policy.idleTimeoutMs;
    const opts = { signal: shell.signal, timeoutMs: policy.connectTimeoutMs, client, local: destination ?? down.local, join, connRelay: !sniff && !shell.paced };
    if (native) {
      c.dialing = dialer.dialConn(policy.upstream, opts, datapath, (err, dialed) => {
        c.dialing = undefined;
        if (err) this.#dialFailed(c, err);
        else this.#relay(c, dialed!.conn, dialed!.remote, destination, false, policy);
      });
      if (c.dialing) return;
    }
    // An upstream that takes bytes before it answers (an agent's stream): relayed at once, so the
    // client's first bytes leave with the open; the flow stays 'dialing' until the answer.
    if (!sniff && dialer.dialEarly) {
      let early;
      try {
        early = dialer.dialEarly(policy.upstream, opts, (err) => this.#earlySettled(c, err));
      } catch (err) {
        return this.#dialFailed(c, err as SluiceError);
      }
      c.awaitingAccept = true;
      return this.#relay(c, early.stream, early.remote, destination, false, policy);
    }
    dialer.dial(policy.upstream, opts).then(
      ({ stream, remote }) => this.#relay(c, stream, remote, destination, sniff, policy),
      (err: SluiceError) => this.#dialFailed(c, err),
    );
  }

  /**
   * The upstream of an early relay answered. Accepted: the session starts (`session-started`,
   * `dial-ok`). Refused, timed out or gone: reported as a failed dial (`dial-error`, no session
   * record), as when the dial is awaited; a client whose bytes were already taken is reset (RST),
   * as the kernel does when a socket with unread bytes is closed, so it never mistakes the end
   * for the service's answer; a client that sent nothing gets a FIN.
   */
  #earlySettled(c: TcpConnection, err: SluiceError | undefined): void {
    if (!c.awaitingAccept) return;
    c.awaitingAccept = false;
    if (!err) {
      c.state = 'open';
      this.#shell.started(c, c.upstream!, c.startedAt);
      return;
    }
    if (c.down.destroyed) return; // the client left first (its relay is ending): no failed dial to report
    const reason = this.#shell.signal.aborted ? 'shutdown' : this.#shell.dialFailed(c, err, c.startedAt);
    if (c.down.bytesRead > 0) c.down.reset();
    c.stop!(reason);
  }

  #dialFailed(c: TcpConnection, err: SluiceError): void {
    if (this.#shell.signal.aborted) return this.#finish(c, 'shutdown');
    this.#finish(c, this.#shell.dialFailed(c, err, c.startedAt));
  }

  /**
   * The relay seam: joins the client and its dialed upstream (PROXY header first when sending);
   * `sniff`: the client's first bytes are checked before any reaches the upstream. An upstream
   * that is a connection of the route's stream datapath is joined to the client there when it
   * can be (no bytes through JavaScript); anything else is relayed as Node streams.
   */
  #relay(c: TcpConnection, stream: Duplex | StreamConn, remote: Endpoint, destination: Endpoint | undefined, sniff: boolean, policy: TcpSessionPolicy): void {
    const { down, client } = c;
    if (c.state === 'closed' || down.destroyed) {
      c.awaitingAccept = false;
      stream.destroy();
      this.#finish(c, 'client-closed');
      return;
    }
    c.upstream = remote;
    if (!c.awaitingAccept) {
      c.state = 'open';
      this.#shell.started(c, remote, c.startedAt);
    }
    // Joined by the datapath at connect: decided at the dial (no header, no pacing), so nothing more here.
    const preJoined = 'writeFirst' in stream && stream.joined === true;
    const header = preJoined ? undefined : this.#pp?.outbound(client, destination ?? down.local);
    if (header) void ('writeFirst' in stream ? stream.writeFirst(header) : stream.write(header));
    const clean = sniff ? firstBytesAreClean(down.socket()) : undefined;
    if (clean) void clean.then((ok) => ok || this.#reject(down, client, 'proxy-header-untrusted'));
    const gates = this.#shell.gatesFor(c.source);
    const bandwidth = gates === undefined ? undefined : { gates, clock: this.deps.clock };
    const onDone = (o: { reason: EndReason; bytesFromClient: number; bytesToClient: number }) => this.#ended(c, o.reason, o.bytesFromClient, o.bytesToClient);
    const datapath = this.deps.streamDatapath ?? jsStreamDatapath;
    const joined = 'writeFirst' in stream && (preJoined || (!clean && !bandwidth)) ? joinInDatapath(datapath, down, stream, policy.idleTimeoutMs, onDone) : undefined;
    // An upstream that joins the client connection itself (an agent's stream on a data connection).
    const own = joined === undefined && !clean && !bandwidth && 'relayConn' in stream ? (stream as Duplex & ConnRelaying).relayConn(down, datapath, policy.idleTimeoutMs, onDone) : undefined;
    // An upstream that relays a socket itself (an agent's tunnel stream) does, without pipe().
    const direct = own ?? (joined === undefined && !clean && !bandwidth && 'relaySocket' in stream ? (stream as Duplex & SocketRelaying).relaySocket(down.socket(), policy.idleTimeoutMs, onDone) : undefined);
    c.stop = joined ?? direct ?? relayTcp(down.socket(), 'writeFirst' in stream ? stream.socket() : stream, policy.idleTimeoutMs, onDone, clean, bandwidth);
  }

  /** Ends a connection from outside the relay (shutdown, dial failure, a verdict). */
  #finish(c: TcpConnection, reason: EndReason): void {
    c.awaitingAccept = false; // ended from outside: no failed dial to report
    if (c.stop) return c.stop(reason);
    if (c.state === 'closed') return;
    c.state = 'closed';
    c.dialing?.cancel();
    c.dialing = undefined;
    c.down.destroy();
    this.#forget(c);
  }

  #ended(c: TcpConnection, reason: EndReason, bytesFromClient: number, bytesToClient: number): void {
    const started = c.state === 'open';
    c.state = 'closed';
    c.awaitingAccept = false;
    // An early relay that ended before its upstream accepted never started: no session record.
    if (!started) return this.#forget(c);
    // The counters are built only when a sink reads the end (no access log, flow records or metrics: none).
    if (this.deps.events.wants('session-ended')) this.#shell.ended(c, reason, { bytesFromClient, packetsFromClient: 0, bytesToClient, packetsToClient: 0 }, c.endDetail);
    this.#forget(c);
  }

  #forget(c: TcpConnection): void {
    if (!this.#conns.delete(c)) return;
    this.#shell.released(c.source);
  }
}
