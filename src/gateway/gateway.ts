import { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { LRUCache } from 'lru-cache';
import { canonicalIp, formatHostPort, formatListen, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { GatewayConfig } from '../config/gateway-schema.js';
import type { EventStream } from '../observe/events.js';
import {
  DatagramOpener, DatagramSealer, TUNNEL_ALPN, computeGatewayProof, exportDatagramKeys, readUnverifiedHeader,
  type RefusalCode,
} from '../protocol/tunnel/index.js';
import type { ListenerReceiver, UdpDatapath, UdpListener } from '../datapath/udp-datapath.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import { ControlChannel, type ChannelEnd } from '../upstream/agent/control-channel.js';
import { AgentLink, type KeySet, type LinkHost } from './agent-link.js';
import { AuthBackoff } from './auth-backoff.js';
import { PendingSlots } from '../admission/pending-slots.js';
import { sourceKey } from '../admission/source-key.js';
import { RefusalHold } from '../admission/refusal-hold.js';
import { loadOrCreateCertificate, type GatewayCertificate, type OpensslRunner } from './certificate.js';
import { newGatewayCounters, type GatewayCounters } from './counters.js';
import { DatagramDemux } from './demux.js';
import { runGatewayHandshake, type HandshakeFailure, type HandshakeOutcome } from './handshake.js';
import { PeerRelay } from './peer-relay.js';
import type { RouteDepsSource, RouteRuntime } from '../listen/route.js';
import { ServicePublisher } from './service-publisher.js';
import { StunBindingServer, stunRoute } from './stun-server.js';

/** One agent service's public listener on this gateway, as `Gateway.published()` lists it. */
export interface PublishedRoute {
  readonly agent: string;
  /** attached: the agent's control connection is up; detached: within its resume grace. */
  readonly agentState: 'attached' | 'detached' | 'closed';
  readonly service: string;
  /** After a resume, until the agent publishes the service again (then it closes if it does not). */
  readonly stale: boolean;
  readonly route: RouteRuntime;
}

/** What the gateway reports; each is called once per occurrence, at the boundary that owns it. */
export interface GatewayObserver {
  started(e: { tcp: Endpoint; udp: Endpoint; fingerprint: string; generated: boolean; certPath: string }): void;
  authRefused(e: { remote: Endpoint; agent: string | undefined; failure: HandshakeFailure; message: string }): void;
  agentUp(e: { agent: string; remote: Endpoint; resumed: boolean; keyId: number }): void;
  agentDown(e: { agent: string; reason: string }): void;
  agentGone(e: { agent: string; reason: string }): void;
  published(e: { agent: string; service: string; transport: 'tcp' | 'udp'; bound: Endpoint }): void;
  publishRefused(e: { agent: string; service: string; code: RefusalCode; message: string }): void;
}

export interface GatewayDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  /** Admission and flow ids for the public listeners, as the node's own routes get (SluiceNode.routeDeps). */
  readonly routeDeps: RouteDepsSource;
  readonly observer?: Partial<GatewayObserver>;
  readonly openssl?: OpensslRunner;
  /** How the shared UDP port moves packets (the node's; js when absent). */
  readonly datapath?: UdpDatapath;
  /** Why a source is banned (docs/bans.md), or undefined: its connections are refused before TLS. */
  readonly banned?: (client: Endpoint) => string | undefined;
}

/**
 * The public side of exposed services (docs/expose.md): the agent endpoint (TLS 1.3 on
 * `listen`), tunnel datagrams and STUN on the UDP port with the same number, the registry of
 * authenticated agents (by name and by datagram key id), and their public listeners.
 *
 * Before authentication a connection costs a slot in the pre-auth caps, a timer and a nonce,
 * never an agent entry: AgentLinks exist only for agents that proved their token.
 */
export class Gateway {
  readonly counters: GatewayCounters = newGatewayCounters();
  readonly #links = new Map<string, AgentLink>();
  readonly #byKey = new Map<number, { link: AgentLink; keys: KeySet }>();
  /** Pre-auth connections (docs/security.md: slow handshakes). Stage 0: TLS under way; 1: TLS done. */
  readonly #pending: PendingSlots;
  /** Addresses an agent authenticated from: their newcomers may evict other pre-auth connections. */
  readonly #knownSources = new LRUCache<string, true>({ max: 10_000 });
  /** Refused connections, held unread until the handshake timeout so they cannot reconnect in a loop. */
  readonly #refused: RefusalHold;
  readonly #backoff: AuthBackoff;
  readonly #publisher: ServicePublisher;
  readonly #host: LinkHost;
  readonly #observer: Partial<GatewayObserver>;
  readonly stun: StunBindingServer;
  /** What the UDP socket answers by itself (STUN, keepalive acks) to sources it has not verified: at most 3x. */
  readonly replies = new UnverifiedReplyGuard();
  /** Offers, SIGNAL forwarding and relayed flows between agents (issue 7). */
  readonly peers: PeerRelay;
  #closing: Promise<void> | undefined;

  private constructor(
    readonly config: GatewayConfig,
    private readonly deps: GatewayDeps,
    private readonly server: tls.Server,
    private readonly front: net.Server,
    private readonly udp: UdpListener,
    udpReceiver: { handle: ListenerReceiver['onDatagram']; sendErrors: number },
    readonly certificate: GatewayCertificate,
    readonly tcpAddress: Endpoint,
    readonly udpAddress: Endpoint,
  ) {
    this.#observer = deps.observer ?? {};
    this.#backoff = new AuthBackoff(config.authBackoff, deps.clock);
    this.#pending = new PendingSlots({ max: config.maxHandshakes, maxPerSource: config.maxHandshakesPerSource });
    this.#refused = new RefusalHold(
      { holdMs: config.handshakeTimeoutMs, max: Math.min(16 * config.maxHandshakes, 16_384), maxPerSource: config.maxHandshakesPerSource },
      deps.clock,
    );
    this.#publisher = new ServicePublisher({
      clock: deps.clock,
      events: deps.events,
      routeDeps: deps.routeDeps,
      settings: config.services,
      maxServicesPerAgent: config.maxServicesPerAgent,
      portsOf: (agent) => config.agents.get(agent)?.ports ?? config.ports,
      udpOf: (agent) => config.agents.get(agent)?.udp ?? config.services.udp,
      bandwidthOf: (agent) => config.agents.get(agent)?.bandwidth,
    });
    const send = (buf: Buffer, port: number, address: string) => {
      try {
        udp.send(buf, port, address);
      } catch {
        /* the socket is closing */
      }
    };
    this.stun = new StunBindingServer(send, { replies: this.replies });
    this.peers = new PeerRelay({
      clock: deps.clock,
      counters: this.counters,
      maxFlowsPerAgent: config.maxPeerFlowsPerAgent,
      server: tcpAddress,
      known: (name) => config.agents.has(name),
      link: (name) => this.#links.get(name),
    });
    this.#host = {
      clock: deps.clock,
      counters: this.counters,
      keepaliveIntervalMs: config.keepaliveIntervalMs,
      localWindow: config.streamWindow,
      maxStreams: config.maxStreamsPerAgent,
      resumeGraceMs: config.resumeGraceMs,
      republishMs: config.handshakeTimeoutMs,
      sendUdp: send,
      datagramBudget: config.datagramBudget,
      events: deps.events,
      replies: this.replies,
      peers: this.peers,
      publish: async (link, m) => {
        const answer = await this.#publisher.publish(link, m);
        if (answer.type === 'publish-ok') {
          this.counters.publishOk++;
          this.#observer.published?.({ agent: link.name, service: m.name, transport: m.transport, bound: answer.bound });
        } else if (answer.type === 'publish-error') {
          this.counters.publishRefused[answer.code] = (this.counters.publishRefused[answer.code] ?? 0) + 1;
          this.#observer.publishRefused?.({ agent: link.name, service: m.name, code: answer.code, message: answer.message });
        }
        return answer;
      },
      forgetKey: (keyId) => void this.#byKey.delete(keyId),
      closed: (link, reason) => {
        if (this.#links.get(link.name) === link) this.#links.delete(link.name);
        this.peers.closed(link);
        this.#observer.agentGone?.({ agent: link.name, reason });
      },
      agentDown: (link, end) => this.#observer.agentDown?.({ agent: link.name, reason: describeEnd(end) }),
      serviceClosed: (_link, s) => {
        const r = s.route;
        deps.events.emit({ type: 'route-down', at: deps.clock.wallNow(), route: r.name, listen: formatListen(r.config.listen), address: r.local });
      },
    };
    const demux = new DatagramDemux({
      stun: config.stun ? stunRoute(this.stun) : undefined,
      application: (buf, from) => this.#onDatagram(buf, from.address, from.port),
    });
    udpReceiver.handle = (buf, address, port) => demux.handle(buf, { address, port });
    front.on('connection', (raw: net.Socket) => this.#onConnection(raw));
    front.on('error', () => {});
    server.on('secureConnection', (s: tls.TLSSocket) => this.#onSecure(s));
    server.on('tlsClientError', (_err, socket: tls.TLSSocket) => {
      this.counters.tlsErrors++;
      this.#releases.get(`${socket.remoteAddress}|${socket.remotePort}`)?.();
      socket.destroy();
    });
    server.on('error', () => {});
  }

  /**
   * Loads (or makes) the certificate, listens on TLS, binds the UDP port with the same number.
   * Throws SluiceError: SLUICE_ERR_BIND, _CONFIG_READ, _CONFIG_INVALID (no openssl to make a cert).
   */
  static async start(config: GatewayConfig, deps: GatewayDeps): Promise<Gateway> {
    const cert = await loadOrCreateCertificate({ stateDir: config.stateDir, tls: config.tls }, deps.openssl);
    // The demultiplexer exists once the gateway does; datagrams before that are dropped.
    const receiver = { handle: (() => {}) as ListenerReceiver['onDatagram'], sendErrors: 0 };
    const { server, front, udp, tcp, udpLocal } = await bindPair(config, cert, deps.datapath ?? jsDatapath, {
      onDatagram: (buf, address, port) => receiver.handle(buf, address, port),
      onSendError: () => void receiver.sendErrors++,
    });
    const g = new Gateway(config, deps, server, front, udp, receiver, cert, tcp, udpLocal);
    g.#observer.started?.({ tcp, udp: udpLocal, fingerprint: cert.fingerprint, generated: cert.generated, certPath: cert.certPath });
    return g;
  }

  get fingerprint(): string {
    return this.certificate.fingerprint;
  }

  agent(name: string): AgentLink | undefined {
    return this.#links.get(name);
  }

  agents(): AgentLink[] {
    return [...this.#links.values()];
  }

  /**
   * The public listeners of every agent's published services, with whose they are: the admin API,
   * metrics, records and the dashboard show them beside the node's own routes.
   */
  published(): PublishedRoute[] {
    const out: PublishedRoute[] = [];
    for (const link of this.#links.values()) {
      for (const s of link.services.values()) out.push({ agent: link.name, agentState: link.state, service: s.name, stale: s.stale, route: s.route });
    }
    return out;
  }

  /** Refused pre-auth connections held open (unread) right now. */
  get heldRefusals(): number {
    return this.#refused.size;
  }

  /** Pre-auth connections right now. */
  get pendingHandshakes(): number {
    return this.#pending.size;
  }

  /** Stops accepting, tells every agent it is shutting down, closes the public listeners. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closedServer = new Promise<void>((resolve) => this.front.close(() => resolve()));
      await Promise.all([...this.#links.values()].map((l) => l.close('shutting-down', 'the gateway is shutting down')));
      this.#refused.close();
      for (const s of [...this.#sockets, ...this.#secure]) s.destroy();
      await Promise.all([this.udp.close(), closedServer]);
    })();
    return this.#closing;
  }

  /** Raw sockets before their handshake ended (Node emits no 'close' on them once TLS wraps them). */
  readonly #sockets = new Set<net.Socket>();
  /** TLS sockets, until they close. */
  readonly #secure = new Set<tls.TLSSocket>();
  /** Releases the pre-auth slot of a connection, by remote address|port. */
  readonly #releases = new Map<string, () => void>();
  /** Marks a pre-auth connection's TLS as done (it then outranks connections still in TLS). */
  readonly #advances = new Map<string, () => void>();

  #onConnection(raw: net.Socket): void {
    // Counted per source key (IPv6 per /64 by default, as every per-source limit); preferred by the
    // exact address an agent authenticated from.
    const ip = canonicalIp(raw.remoteAddress ?? '');
    const source = ip ? sourceKey(ip, this.config.services.sourcePrefix) : '?';
    const key = `${raw.remoteAddress}|${raw.remotePort}`;
    if (ip && this.deps.banned?.({ address: ip.address, port: raw.remotePort ?? 0, family: ip.family }) !== undefined) {
      // Held unread like a capped connection, so a banned agent cannot spin reconnecting.
      this.counters.preAuthBanned++;
      this.#refused.refuse(raw, source);
      return;
    }
    const admitted = this.#closing ? undefined : this.#pending.admit(source, ip !== undefined && this.#knownSources.has(ip.address), () => {
      this.counters.preAuthEvicted++;
      this.#releases.get(key)?.();
      raw.destroy();
    });
    if (!admitted?.ok) {
      this.counters.preAuthCapped++;
      this.#refused.refuse(raw, source);
      return;
    }
    const slot = admitted.slot;
    this.#sockets.add(raw);
    let released = false;
    // Node hands the raw socket to a TLSSocket and emits no 'close' on it afterwards, so the slot
    // is also freed by this timer: nothing may stay pre-auth longer than the handshake timeout.
    const deadline = this.deps.clock.setTimeout(() => {
      if (released) return;
      release();
      raw.destroy();
    }, this.config.handshakeTimeoutMs + 100);
    const release = () => {
      if (released) return;
      released = true;
      deadline.cancel();
      this.#sockets.delete(raw);
      this.#releases.delete(key);
      this.#advances.delete(key);
      slot.release();
    };
    this.#releases.set(key, release);
    this.#advances.set(key, () => slot.advance(1));
    raw.once('close', release);
    raw.on('error', () => {});
    raw.setNoDelay(true); // stream frames are latency-bound; TLS records already batch
    this.server.emit('connection', raw);
  }

  #onSecure(socket: tls.TLSSocket): void {
    socket.on('error', () => {});
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    const release = this.#releases.get(key) ?? (() => {});
    this.#advances.get(key)?.();
    socket.once('close', release);
    this.#secure.add(socket);
    socket.once('close', () => this.#secure.delete(socket));
    const ip = canonicalIp(socket.remoteAddress ?? '');
    const remote: Endpoint = { address: ip?.address ?? '0.0.0.0', port: socket.remotePort ?? 0, family: ip?.family ?? 4 };
    if (socket.alpnProtocol !== TUNNEL_ALPN) {
      this.counters.tlsErrors++;
      socket.destroy();
      return;
    }
    const channel = new ControlChannel(socket, 'gateway');
    void runGatewayHandshake(channel, {
      clock: this.deps.clock,
      timeoutMs: this.config.handshakeTimeoutMs,
      backoff: this.#backoff,
      credentials: (name) => this.config.agents.get(name),
      source: remote.address,
    }).then((o) => {
      release();
      if (!o.ok) {
        this.counters.authRefused[o.failure] = (this.counters.authRefused[o.failure] ?? 0) + 1;
        this.#observer.authRefused?.({ remote, agent: o.agent, failure: o.failure, message: o.message });
        if (o.failure === 'wrong-token' || o.failure === 'unknown-agent' || o.failure === 'rate-limited') {
          this.deps.events.emit({ type: 'auth-failed', at: this.deps.clock.wallNow(), client: remote, ...(o.agent ? { agent: o.agent } : {}), failure: o.failure });
        }
        return;
      }
      if (this.#closing) return channel.close('shutting-down', 'the gateway is shutting down');
      this.#knownSources.set(remote.address, true);
      this.#authenticated(channel, o, remote);
    });
  }

  #authenticated(channel: ControlChannel, o: Extract<HandshakeOutcome, { ok: true }>, remote: Endpoint): void {
    const socket = channel.socket as tls.TLSSocket;
    const material = exportDatagramKeys(socket, 'gateway');
    const keyId = this.#allocateKeyId();
    const keys: KeySet = {
      keyId,
      opener: new DatagramOpener({ key: material.receive, direction: material.receiveDirection, keyId }),
      sealer: new DatagramSealer({ key: material.send, direction: material.sendDirection, peerKeyId: o.hello.datagramKeyId }),
    };
    const name = o.hello.name;
    let link = this.#links.get(name);
    const resumed = link !== undefined && link.state !== 'closed' && o.hello.resumeKeyId !== 0 && o.hello.resumeKeyId === link.currentKeyId;
    if (link && !resumed) {
      void link.close('superseded', 'a newer connection of this agent authenticated');
      link = undefined;
    }
    if (!link) {
      link = new AgentLink(name, this.#host, remote);
      this.#links.set(name, link);
    }
    this.#byKey.set(keyId, { link, keys });
    const proof = computeGatewayProof({ token: o.token, nonce: o.nonce, binding: o.binding, agentName: name });
    channel.send({
      type: 'auth-ok',
      datagramKeyId: keyId,
      resumed,
      streamWindow: this.config.streamWindow,
      keepaliveIntervalMs: this.config.keepaliveIntervalMs,
      proof,
    });
    link.attach(channel, keys, o.hello, remote, resumed);
    this.counters.authOk++;
    if (resumed) this.counters.authResumed++;
    this.#observer.agentUp?.({ agent: name, remote, resumed, keyId });
  }

  #allocateKeyId(): number {
    for (;;) {
      const id = randomInt(1, 0xffff_ffff);
      if (!this.#byKey.has(id)) return id;
    }
  }

  /** Hot path: a datagram the demultiplexer gave to the application (tunnel types 12-14). */
  #onDatagram(buf: Buffer, address: string, port: number): void {
    const h = readUnverifiedHeader(buf);
    if (!h) {
      this.counters.datagramRejected.malformed++;
      return;
    }
    const e = this.#byKey.get(h.keyId);
    if (!e) {
      this.counters.datagramUnknownKey++;
      return;
    }
    e.link.onUdpDatagram(e.keys, buf, address, port);
  }
}

function describeEnd(end: ChannelEnd): string {
  if (end.goaway) return `goaway ${end.goaway.code}: ${end.goaway.message}`;
  if (end.sent) return `closed by the gateway: ${end.sent}`;
  return end.error?.message ?? 'closed';
}

/**
 * TLS on `listen`, then UDP on the same port number (a port 0 listen retries until both fit). A
 * plain TCP listener accepts and hands to TLS only the connections the pre-auth slots admit, so a
 * refused one costs no TLS state, and its backlog is deep enough that a flood of refused
 * reconnects does not crowd legitimate SYNs out of the kernel's accept queue.
 */
async function bindPair(config: GatewayConfig, cert: GatewayCertificate, datapath: UdpDatapath, receiver: ListenerReceiver) {
  const { host, port } = config.listen;
  for (let attempt = 0; ; attempt++) {
    const server = tls.createServer({
      cert: cert.cert,
      key: cert.key,
      minVersion: 'TLSv1.3',
      ALPNProtocols: [TUNNEL_ALPN],
      handshakeTimeout: config.handshakeTimeoutMs,
      allowHalfOpen: false,
    });
    const front = net.createServer({ pauseOnConnect: true, noDelay: true });
    try {
      const listening = once(front, 'listening');
      front.listen({ host, port, exclusive: true, backlog: 4096 });
      await listening;
    } catch (err) {
      front.close();
      throw new SluiceError('SLUICE_ERR_BIND', `gateway: cannot listen on tcp ${formatHostPort(host, port)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    const a = front.address() as net.AddressInfo;
    let udp: UdpListener;
    try {
      udp = await datapath.listen(host, a.port, receiver);
    } catch (err) {
      front.close();
      if (port === 0 && errnoCode(err) === 'EADDRINUSE' && attempt < 20) continue;
      throw new SluiceError('SLUICE_ERR_BIND', `gateway: cannot bind udp ${formatHostPort(host, a.port)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    const ip = canonicalIp(a.address)!;
    const tcp: Endpoint = { address: ip.address, port: a.port, family: ip.family };
    return { server, front, udp, tcp, udpLocal: udp.local };
  }
}
