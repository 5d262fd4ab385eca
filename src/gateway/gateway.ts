import { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';
import { randomInt } from 'node:crypto';
import type tls from 'node:tls';
import { type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { GatewayConfig } from '../config/expose-config.js';
import type { EventStream } from '../observe/events.js';
import {
  computeGatewayProof, exportDatagramKeys, exportDataToken, readUnverifiedHeader, dataConnAlpn, trunkAlpn,
  type RefusalCode,
} from '../protocol/tunnel/index.js';
import type { ListenerReceiver, UdpDatapath } from '../datapath/udp-datapath.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import { jsStreamDatapath } from '../datapath/js-stream-datapath.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import { DataConnRegistry, LinkDataConns, MAX_IDLE_DATA_CONNS } from './data-conns.js';
import { LinkTrunks } from './trunks.js';
import type { ChannelEnd, ControlChannel } from '../upstream/agent/control-channel.js';
import { AgentLink, type LinkHost } from './agent-link.js';
import type { KeySet } from './agent-udp.js';
import type { AgentLinkState } from './agent-link-state.js';
import { AgentEndpoint, type Authenticated } from './agent-endpoint.js';
import { bindPair, type BoundPair } from './bind-pair.js';
import { tunnelOpener, tunnelSealer } from '../datapath/tunnel-keys.js';
import { loadOrCreateCertificate, type GatewayCertificate, type OpensslRunner } from './certificate.js';
import { newGatewayCounters, type GatewayCounters } from './counters.js';
import { DatagramDemux } from './demux.js';
import type { HandshakeFailure } from './handshake.js';
import { PeerRelay } from './peer-relay.js';
import { FleetPeers, type FleetBus } from './fleet-peers.js';
import type { RouteDepsSource, RouteRuntime } from '../listen/route.js';
import { ServicePublisher } from './service-publisher.js';
import { formatListenSpan } from '../config/port-span.js';
import { AgentPools, type AgentPool } from './agent-pools.js';
import { StunBindingServer, stunRoute } from './stun-server.js';

/** One agent service's public listener on this gateway, as `Gateway.published()` lists it. */
export interface PublishedRoute {
  readonly agent: string;
  /** attached: the agent's control connection is up; detached: within its resume grace. */
  readonly agentState: AgentLinkState;
  readonly service: string;
  /** After a resume, until the agent publishes the service again (then it closes if it does not). */
  readonly stale: boolean;
  readonly route: RouteRuntime;
  /** The listener of an agent pool (`agent` is then empty): its group and members (docs/pools.md). */
  readonly pool?: AgentPool;
}

export interface GatewayDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  /** Admission and flow ids for the public listeners, as the node's own routes get (the root's route deps). */
  readonly routeDeps: RouteDepsSource;
  readonly openssl?: OpensslRunner;
  /** How the shared UDP port moves packets (the node's; js when absent). */
  readonly datapath?: UdpDatapath;
  /** Why a source is banned (docs/bans.md), or undefined: its connections are refused before TLS. */
  readonly banned?: (client: Endpoint) => string | undefined;
  /** How the agent endpoint's TCP port accepts (the node's; js when absent): data connections stay its connections. */
  readonly streamDatapath?: StreamDatapath;
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
  /** The data connections of control connections that negotiated them, by token. */
  readonly #dataConns = new DataConnRegistry();
  /** TLS connections until their agent authenticated: caps, refusal hold, handshakes. */
  readonly #endpoint: AgentEndpoint;
  readonly #publisher: ServicePublisher;
  readonly #pools: AgentPools;
  readonly #host: LinkHost;
  readonly stun: StunBindingServer;
  /** What the UDP socket answers by itself (STUN, keepalive acks) to sources it has not verified: at most 3x. */
  readonly replies = new UnverifiedReplyGuard();
  /** Offers, SIGNAL forwarding and relayed flows between agents (issue 7). */
  readonly peers: PeerRelay;
  #closing: Promise<void> | undefined;
  /** Peer flows toward agents on other gateways of the fleet (`joinFleet`). */
  #fleetPeers: FleetPeers | undefined;

  /** Builds everything that handles traffic; `start` then binds the sockets with it (`#listen`). */
  private constructor(
    readonly config: GatewayConfig,
    private readonly deps: GatewayDeps,
    readonly certificate: GatewayCertificate,
  ) {
    this.#endpoint = new AgentEndpoint({
      config,
      clock: deps.clock,
      counters: this.counters,
      banned: deps.banned,
      closing: () => this.#closing !== undefined,
      refused: (remote, o) => {
        deps.events.emit({ type: 'gateway-auth-refused', at: deps.clock.wallNow(), remote, agent: o.agent, failure: o.failure, message: o.message });
        if (o.failure === 'wrong-token' || o.failure === 'unknown-agent' || o.failure === 'rate-limited') {
          deps.events.emit({ type: 'auth-failed', at: deps.clock.wallNow(), client: remote, ...(o.agent ? { agent: o.agent } : {}), failure: o.failure });
        }
      },
      authenticated: (channel, o, remote) => this.#authenticated(channel, o, remote),
      dataConnection: (hello, conn) => {
        const refusal = this.#dataConns.admit(hello, conn);
        if (refusal === undefined) this.counters.dataConnAccepted++;
        return refusal;
      },
    });
    const routeClosed = (r: RouteRuntime) =>
      deps.events.emit({ type: 'route-down', at: deps.clock.wallNow(), route: r.name, listen: formatListenSpan(r.config.listen, r.config.ports), address: r.local });
    this.#pools = new AgentPools({
      clock: deps.clock,
      events: deps.events,
      groups: config.groups,
      portsOf: (agent) => config.agents.get(agent)?.ports ?? config.ports,
      listen: (link, name, m, dialers) => this.#publisher.startPool(link, m, name, dialers),
      closing: (r) => this.#publisher.poolClosed(r),
      closed: routeClosed,
    });
    this.#publisher = new ServicePublisher({
      pools: this.#pools,
      clock: deps.clock,
      events: deps.events,
      routeDeps: deps.routeDeps,
      settings: config.services,
      maxServicesPerAgent: config.maxServicesPerAgent,
      portsOf: (agent) => config.agents.get(agent)?.ports ?? config.ports,
      udpOf: (agent) => config.agents.get(agent)?.udp ?? config.services.udp,
      bandwidthOf: (agent) => config.agents.get(agent)?.bandwidth,
      ...(config.names ? { names: config.names } : {}),
      namesOf: (agent) => config.agents.get(agent)?.names,
    });
    const send = (buf: Buffer, port: number, address: string) => {
      try {
        this.#bound?.udp.send(buf, port, address);
      } catch {
        /* the socket is closing */
      }
    };
    this.stun = new StunBindingServer(send, { replies: this.replies });
    this.peers = new PeerRelay({
      clock: deps.clock,
      counters: this.counters,
      maxFlowsPerAgent: config.maxPeerFlowsPerAgent,
      server: () => this.tcpAddress,
      known: (name) => config.agents.has(name),
      link: (name) => this.#links.get(name),
      fleet: () => this.#fleetPeers,
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
          deps.events.emit({ type: 'gateway-published', at: deps.clock.wallNow(), agent: link.name, service: m.name, transport: m.transport, bound: answer.bound });
        } else if (answer.type === 'publish-error') {
          this.counters.publishRefused[answer.code] = (this.counters.publishRefused[answer.code] ?? 0) + 1;
          deps.events.emit({ type: 'gateway-publish-refused', at: deps.clock.wallNow(), agent: link.name, service: m.name, code: answer.code, message: answer.message });
        }
        return answer;
      },
      forgetKey: (keyId) => {
        const e = this.#byKey.get(keyId);
        this.#byKey.delete(keyId);
        e?.keys.opener.release();
        e?.keys.sealer.release();
      },
      closed: (link, reason) => {
        if (this.#links.get(link.name) === link) this.#links.delete(link.name);
        this.peers.closed(link);
        deps.events.emit({ type: 'gateway-agent-gone', at: deps.clock.wallNow(), agent: link.name, reason });
      },
      agentDown: (link, end) => {
        deps.events.emit({ type: 'gateway-agent-down', at: deps.clock.wallNow(), agent: link.name, reason: describeEnd(end) });
        this.#pools.linkChanged(link, 'agent-down');
      },
      serviceClosed: (_link, s) => {
        this.#publisher.released(s);
        routeClosed(s.route);
      },
      serviceHealth: (link, m) => this.#pools.health(link, m),
    };
    const demux = new DatagramDemux({
      stun: config.stun ? stunRoute(this.stun) : undefined,
      application: (buf, from) => this.#onDatagram(buf, from.address, from.port),
    });
    this.#receiver = {
      onDatagram: (buf, address, port) => demux.handle(buf, { address, port }),
      // Sends on the shared port are best effort: a failure drops that datagram only.
      onSendError: () => void this.counters.udpSendErrors++,
    };
  }

  /** The shared UDP port's receiver: the demultiplexer, from the port's first datagram on. */
  readonly #receiver: ListenerReceiver;
  /** The sockets, once `start` bound them with `#receiver`. */
  #bound: BoundPair | undefined;

  #listen(bound: BoundPair): void {
    this.#bound = bound;
    this.#endpoint.serve(bound.server);
  }

  /** The agent endpoint's TCP address (the real port when `listen` said 0). */
  get tcpAddress(): Endpoint {
    return this.#bound!.tcp;
  }

  /** The shared UDP port's address: tunnel datagrams and STUN. */
  get udpAddress(): Endpoint {
    return this.#bound!.udpLocal;
  }

  /**
   * Loads (or makes) the certificate, listens on TLS, binds the UDP port with the same number.
   * Throws SluiceError: SLUICE_ERR_BIND, _CONFIG_READ, _CONFIG_INVALID (no openssl to make a cert).
   */
  static async start(config: GatewayConfig, deps: GatewayDeps): Promise<Gateway> {
    const cert = await loadOrCreateCertificate({ stateDir: config.stateDir, tls: config.tls }, deps.openssl);
    // Nothing the constructor builds holds a socket or a timer: a failed bind leaves nothing behind.
    const g = new Gateway(config, deps, cert);
    g.#listen(await bindPair(config, cert, deps.datapath ?? jsDatapath, g.#receiver, deps.streamDatapath ?? jsStreamDatapath, g.#endpoint.accept));
    deps.events.emit({ type: 'gateway-started', at: deps.clock.wallNow(), tcp: g.tcpAddress, udp: g.udpAddress, fingerprint: cert.fingerprint, generated: cert.generated, certPath: cert.certPath });
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
      for (const s of link.services.values()) {
        if (!s.leave) out.push({ agent: link.name, agentState: link.state, service: s.name, stale: s.stale, route: s.route });
      }
    }
    for (const pool of this.#pools.pools()) {
      if (pool.route) out.push({ agent: '', agentState: 'attached', service: pool.group.name, stale: false, route: pool.route, pool });
    }
    return out;
  }

  /** Refused pre-auth connections held open (unread) right now. */
  get heldRefusals(): number {
    return this.#endpoint.held;
  }

  /** Pre-auth connections right now. */
  get pendingHandshakes(): number {
    return this.#endpoint.pending;
  }

  /**
   * Relays peer flows between this gateway's agents and agents on other gateways of the fleet
   * (fleet-peers.ts); the root calls it once the fleet is up. Returns the bridge (counters, close).
   */
  joinFleet(bus: FleetBus): FleetPeers {
    this.#fleetPeers?.close();
    const relay = this.peers;
    this.#fleetPeers = new FleetPeers(bus, {
      link: (name) => this.#links.get(name),
      offers: (link) => relay.offers(link),
      maxFlowsPerAgent: this.config.maxPeerFlowsPerAgent,
      clock: this.deps.clock,
      counters: this.counters,
    });
    return this.#fleetPeers;
  }

  /** Stops accepting, tells every agent it is shutting down, closes the public listeners. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#fleetPeers?.close();
      const bound = this.#bound!;
      const closedServer = bound.front.close();
      await Promise.all([...this.#links.values()].map((l) => l.close('shutting-down', 'the gateway is shutting down')));
      this.#endpoint.close();
      await Promise.all([bound.udp.close(), closedServer]);
    })();
    return this.#closing;
  }

  #authenticated(channel: ControlChannel, o: Authenticated, remote: Endpoint): void {
    const socket = channel.socket as tls.TLSSocket;
    const material = exportDatagramKeys(socket, 'gateway');
    const keyId = this.#allocateKeyId();
    const keys: KeySet = {
      keyId,
      // Sealed and opened in the native batch where the datapath is native (docs/datapath.md).
      opener: tunnelOpener(this.deps.datapath ?? jsDatapath, { key: material.receive, direction: material.receiveDirection, keyId }, {
        onDropped: (reason, n) => void (this.counters.datagramRejected[reason] += n),
      }),
      sealer: tunnelSealer(this.deps.datapath ?? jsDatapath, { key: material.send, direction: material.sendDirection, peerKeyId: o.hello.datagramKeyId }, () => this.#bound?.udp),
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
    link.authBinding = o.binding;
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
    if (dataConnAlpn(socket.alpnProtocol)) {
      // Data connections of this control connection (docs/tunnel-protocol.md, "Data connections"): until it ends.
      const conns = new LinkDataConns(exportDataToken(socket), socket, MAX_IDLE_DATA_CONNS, this.deps.clock);
      const streamDp = this.deps.streamDatapath ?? jsStreamDatapath;
      if (trunkAlpn(socket.alpnProtocol) && streamDp.trunk) conns.trunks = new LinkTrunks(streamDp);
      this.#dataConns.add(conns);
      link.dataConns = conns;
      void channel.ended.then(() => {
        this.#dataConns.remove(conns);
        if (link.dataConns === conns) link.dataConns = undefined;
      });
    }
    this.counters.authOk++;
    if (resumed) this.counters.authResumed++;
    this.deps.events.emit({ type: 'gateway-agent-up', at: this.deps.clock.wallNow(), agent: name, remote, resumed, keyId });
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
