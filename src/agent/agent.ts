import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type tls from 'node:tls';
import { isDeepStrictEqual } from 'node:util';
import { canonicalIp, formatHostPort, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { AgentConfig } from '../config/expose-config.js';
import type { EventStream } from '../observe/events.js';
import { Backoff } from '../core/backoff.js';
import type { ControlMessage, RefusalCode } from '../protocol/tunnel/index.js';
import { DirectStreamDialer } from '../upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../upstream/direct/udp-dialer.js';
import { resolveDestination, systemResolver, type Resolver } from '../upstream/direct/resolve.js';
import type { DatagramDialer, StreamDialer } from '../upstream/dialer.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import type { ControlChannel } from '../upstream/agent/control-channel.js';
import { StreamMux } from '../upstream/agent/stream-mux.js';
import { AgentDatagramPath, type DatagramMode, type DatagramSink } from './datagram-path.js';
import { nextAgentState, type AgentState } from './agent-state.js';
import { connectToGateway, GatewayConnectError, type ConnectFailure } from './gateway-connection.js';
import { LocalServices, type ExposedService } from './local-services.js';
import { SendBudget } from '../upstream/agent/send-budget.js';
import { PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { RouteRuntime } from '../listen/route.js';
import type { RouteDepsSource } from '../listen/route.js';
import type { IceTiming } from '../ice/agent.js';
import { startConnectListeners } from './connect-listeners.js';
import { Peers } from './peers.js';
import { poolTrailer, startLocalChecks } from './pool-membership.js';

export interface AgentDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly nextFlowId: () => number;
  readonly resolver?: Resolver;
  readonly streamDialer?: StreamDialer;
  readonly datagramDialer?: DatagramDialer;
  /** How the datagram socket to the gateway moves packets (the node's; js when absent). */
  readonly datapath?: UdpDatapath;
  /** For tests: a fixed source of randomness for the backoff jitter. */
  readonly random?: () => number;
  /** Admission, flow ids and datapath for the `connect` listeners (the node's); none when absent. */
  readonly routeDeps?: RouteDepsSource;
  /** For tests: shorter ICE timers. */
  readonly iceTiming?: Partial<IceTiming>;
}

export interface AgentCounters {
  connects: number;
  resumed: number;
  refused: Partial<Record<ConnectFailure, number>>;
  publishRefused: Partial<Record<RefusalCode, number>>;
}

const newBackoff = (c: AgentConfig, random?: () => number) =>
  new Backoff({ initialMs: c.reconnect.initialMs, maxMs: c.reconnect.maxMs, multiplier: 2, jitter: 0.3 }, random);

/** The keys of `agent:` that a reload applies to a running agent (Agent.updateConnection). */
const CONNECTION_KEYS = ['gateway', 'token', 'fingerprint', 'ca', 'serverName', 'reconnect'] as const;

/** 'none' when `next` equals `current`, 'connection' when only CONNECTION_KEYS differ, else 'restart'. */
export function agentChange(current: AgentConfig, next: AgentConfig): 'none' | 'connection' | 'restart' {
  if (isDeepStrictEqual(current, next)) return 'none';
  const strip = (c: AgentConfig) => ({ ...c, ...Object.fromEntries(CONNECTION_KEYS.map((k) => [k, undefined])) });
  return isDeepStrictEqual(strip(current), strip(next)) ? 'connection' : 'restart';
}

/** Longest a connection attempt (TCP, TLS, authentication) may take. */
const CONNECT_TIMEOUT_MS = 15_000;
/** Streams the gateway may have open on one connection; more are reset with `limit`. */
const MAX_STREAMS = 4096;

/**
 * Publishes local services on a gateway (docs/expose.md). Keeps one control connection, and
 * reconnects with exponential backoff and jitter when it fails or ends; each new connection
 * re-publishes every service. The UDP socket, the UDP sessions toward local services and the
 * datagram keys outlive a connection: a short outage does not drop UDP flows whose datagram path
 * still works, and a reconnect that the gateway resumes keeps them.
 */
export class Agent {
  readonly counters: AgentCounters = { connects: 0, resumed: 0, refused: {}, publishRefused: {} };
  readonly #abort = new AbortController();
  #backoff: Backoff;
  readonly #path: AgentDatagramPath;
  readonly local: LocalServices;
  readonly peers: Peers;
  /** The `connect` listeners, bound before the agent first connects. */
  readonly connectRoutes: readonly RouteRuntime[];
  #state: AgentState = 'connecting';
  /** Wall ms when the current connection authenticated; undefined while not connected. */
  connectedSince: number | undefined;
  /** The last failed attempt or lost connection (for the status views), until the next one. */
  lastDisconnect: { readonly failure: ConnectFailure | 'lost'; readonly message: string; readonly at: number } | undefined;
  #channel: ControlChannel | null = null;
  #wait: Timer | undefined;
  #wake: (() => void) | undefined;
  readonly #done: Promise<void>;
  #config: AgentConfig;
  #ca: Buffer | undefined;
  /** Pool members' own checks of their local services, reported on the current connection. */
  readonly #checks: ReturnType<typeof startLocalChecks>;

  private constructor(
    config: AgentConfig,
    private readonly deps: AgentDeps,
    ca: Buffer | undefined,
    parts: AgentParts,
    connectRoutes: readonly RouteRuntime[],
  ) {
    this.#config = config;
    this.#ca = ca;
    this.#backoff = newBackoff(config, deps.random);
    this.#path = parts.path;
    this.local = parts.local;
    this.peers = parts.peers;
    this.connectRoutes = connectRoutes;
    this.#checks = startLocalChecks(parts.local.services, deps.clock, (m) => this.#channel?.send(m) ?? false);
    this.#done = this.#run();
  }

  /**
   * Builds the parts, binds the `connect` listeners on the peers, then starts connecting in the
   * background; never waits for the gateway. A listener that cannot bind fails the start, and
   * what was built is closed.
   */
  static async start(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
    const ca = config.ca === undefined ? undefined : await readFile(config.ca);
    const parts = buildParts(config, deps);
    let connectRoutes: RouteRuntime[];
    try {
      connectRoutes = await startConnectListeners(config.connect, parts.peers, {
        clock: deps.clock, events: deps.events, routeDeps: deps.routeDeps, nextFlowId: deps.nextFlowId,
      });
    } catch (err) {
      parts.peers.close();
      parts.local.close();
      parts.path.close();
      throw err;
    }
    return new Agent(config, deps, ca, parts, connectRoutes);
  }

  get config(): AgentConfig {
    return this.#config;
  }

  /**
   * Takes new connection settings (gateway address, token, pin, CA, server name, backoff) from a
   * reloaded config and connects with them at once; every other key must be unchanged
   * (`connectionOnlyChange`). Rejects, keeping the old settings, when the CA file cannot be read.
   */
  async updateConnection(next: AgentConfig): Promise<void> {
    const ca = next.ca === undefined ? undefined : await readFile(next.ca);
    this.#config = next;
    this.#ca = ca;
    this.#backoff = newBackoff(next, this.deps.random);
    if (this.#state !== 'closed') this.reconnectNow();
  }

  /** See agent-state.ts; moved only through its transition table (`#move`). */
  get state(): AgentState {
    return this.#state;
  }

  #move(to: AgentState): void {
    this.#state = nextAgentState(this.#state, to);
  }

  get datagramMode(): DatagramMode {
    return this.#path.mode;
  }

  get datagramCounters() {
    return this.#path.counters;
  }

  services(): readonly ExposedService[] {
    return this.local.services;
  }

  /** Closes the current connection now and reconnects at once (tests, and operators after a network change). */
  reconnectNow(): void {
    this.#channel?.destroy({ error: new Error('reconnect requested') });
    this.#wait?.cancel();
    this.#wake?.();
  }

  /** Says GOAWAY(shutting-down), closes everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return this.#done;
    this.#move('closed');
    this.#abort.abort();
    this.#channel?.close('shutting-down', 'the agent is shutting down');
    this.#wait?.cancel();
    this.#wake?.();
    this.#checks.close();
    await this.#done;
    await Promise.all(this.connectRoutes.map((r) => r.close('shutdown')));
    this.peers.close();
    this.local.close();
    this.#path.close();
  }

  async #run(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      let failure: ConnectFailure | 'lost' = 'lost';
      let message = 'the connection ended';
      try {
        const end = await this.#connectOnce();
        message = end;
      } catch (err) {
        failure = err instanceof GatewayConnectError ? err.failure : 'closed';
        message = (err as Error).message;
        if (failure !== 'closed' || !this.#abort.signal.aborted) this.counters.refused[failure] = (this.counters.refused[failure] ?? 0) + 1;
      }
      if (this.#abort.signal.aborted) break;
      this.#move('waiting');
      this.connectedSince = undefined;
      this.lastDisconnect = { failure, message, at: this.deps.clock.wallNow() };
      const delay = this.#backoff.next();
      this.deps.events.emit({ type: 'agent-disconnected', at: this.deps.clock.wallNow(), failure, message, retryInMs: delay });
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#wait = this.deps.clock.setTimeout(resolve, delay);
      });
      this.#wake = undefined;
      if (!this.#abort.signal.aborted) this.#move('connecting');
    }
  }

  /** One connection from TLS to its end; resolves with why it ended, rejects when it never authenticated. */
  async #connectOnce(): Promise<string> {
    const cfg = this.#config;
    const remote = await resolveDestination(cfg.gateway, this.deps.resolver ?? systemResolver, 'trusted');
    const keyId = randomInt(1, 0xffff_ffff);
    const { channel, authOk, keys, binding } = await connectToGateway({
      host: remote.address,
      port: remote.port,
      name: cfg.name,
      token: cfg.token,
      fingerprint: cfg.fingerprint,
      ca: this.#ca,
      serverName: cfg.serverName ?? (canonicalIp(cfg.gateway.host) ? undefined : cfg.gateway.host),
      datagramKeyId: keyId,
      resumeKeyId: this.#path.gatewayKeyId,
      streamWindow: cfg.streamWindow,
      timeoutMs: CONNECT_TIMEOUT_MS,
      clock: this.deps.clock,
      signal: this.#abort.signal,
      onKeys: (k) => this.#path.prepare(keyId, k),
    });
    if (this.#abort.signal.aborted) {
      // close() ran while the handshake was finishing: this connection is not used.
      channel.close('shutting-down', 'the agent is shutting down');
      return 'closed while connecting';
    }
    this.#channel = channel;
    this.#move('connected');
    this.connectedSince = this.deps.clock.wallNow();
    this.#backoff.reset();
    this.counters.connects++;
    if (authOk.resumed) this.counters.resumed++;
    else {
      this.local.resetUdp();
      this.peers.resetExposed();
      this.#path.forgetKeys();
    }
    const socket = channel.socket as tls.TLSSocket;
    const gwIp = canonicalIp(socket.remoteAddress ?? remote.address)?.address ?? remote.address;
    const mux = new StreamMux(channel, { role: 'agent', localWindow: cfg.streamWindow, peerWindow: authOk.streamWindow, maxStreams: MAX_STREAMS }, (stream, m) =>
      this.local.onStreamOpen(stream, m, (s) => mux.accept(s)),
    );
    const pending = new Map<number, ExposedService>();
    channel.onMessage((m: ControlMessage) => {
      if (mux.handle(m)) return;
      if (this.peers.handle(m)) return;
      switch (m.type) {
        case 'publish-ok': {
          const svc = pending.get(m.serviceId);
          if (!svc) return;
          svc.bound = m.bound;
          svc.refusal = undefined;
          this.deps.events.emit({ type: 'agent-published', at: this.deps.clock.wallNow(), service: svc.config.name, bound: m.bound });
          this.#checks.published(svc);
          return;
        }
        case 'publish-error': {
          const svc = pending.get(m.serviceId);
          if (svc) svc.refusal = { code: m.code, message: m.message };
          this.counters.publishRefused[m.code] = (this.counters.publishRefused[m.code] ?? 0) + 1;
          this.deps.events.emit({ type: 'agent-publish-refused', at: this.deps.clock.wallNow(), service: svc?.config.name ?? String(m.serviceId), code: m.code, message: m.message });
          return;
        }
        case 'datagram':
          this.#path.onFrame(m.tag, m.origin, m.payload);
          return;
        case 'datagram-close':
          this.local.onGatewayClose(m.tag);
          return;
        default:
          return;
      }
    });
    await this.#path.attach(
      channel, keyId, keys, authOk.datagramKeyId, { address: gwIp, port: remote.port, family: canonicalIp(gwIp)?.family ?? 4 }, authOk.keepaliveIntervalMs,
      socket.localAddress,
    );
    channel.startKeepalive(authOk.keepaliveIntervalMs);
    for (const svc of this.local.services) {
      if (svc.config.peers.length > 0) {
        channel.send({ type: 'offer', serviceId: svc.id, name: svc.config.name, transport: svc.config.transport, peers: svc.config.peers });
      }
      const r = svc.config.remote;
      if (!r) continue;
      pending.set(svc.id, svc);
      const ip = canonicalIp(r.host)!;
      channel.send({
        type: 'publish',
        serviceId: svc.id,
        name: svc.config.name,
        transport: r.transport,
        remote: { address: ip.address, port: r.port, family: ip.family },
        proxyProtocol: svc.config.proxyProtocol,
        ...(svc.config.pool ? { pool: poolTrailer(svc, cfg.name, binding) } : {}),
      });
    }
    // The gateway holds its own frames until it hears from us after AUTH_OK (control-channel.ts).
    channel.send({ type: 'ping', counter: 0 });
    const server = { address: gwIp, port: remote.port, family: canonicalIp(gwIp)?.family ?? 4 } as const;
    this.peers.attach({
      send: (m) => channel.send(m),
      openStream: (opts, beforeOpen) => mux.open(0, opts.client ?? server, opts.local ?? server, opts.timeoutMs, opts.signal, beforeOpen),
    });
    this.deps.events.emit({ type: 'agent-connected', at: this.deps.clock.wallNow(), gateway: formatHostPort(remote.address, remote.port), resumed: authOk.resumed });
    const end = await channel.ended;
    this.peers.detach();
    this.#channel = null;
    mux.destroyAll();
    this.#path.detach(channel);
    if (end.goaway) return `the gateway said goaway ${end.goaway.code}: ${end.goaway.message}`;
    if (end.sent) return `closed here: ${end.sent}`;
    return end.error?.message ?? 'closed';
  }
}

interface AgentParts {
  readonly path: AgentDatagramPath;
  readonly local: LocalServices;
  readonly peers: Peers;
}

/**
 * The parts in the order datagrams flow through them: the datagram path (its sink hands gateway
 * datagrams to the peers and the local services, built next; nothing arrives before the path is
 * attached to a connection), the local services, then the peers on the path.
 */
function buildParts(config: AgentConfig, deps: AgentDeps): AgentParts {
  const { clock, events } = deps;
  const sink: DatagramSink = {
    onGatewayDatagram: (t, o, p) => {
      if (t & PEER_TAG_BIT) return peers.onRelayDatagram(t, p);
      peers.relayArrived(t);
      local.onGatewayDatagram(t, o, p);
    },
    onGatewayClose: (t) => local.onGatewayClose(t),
  };
  const path: AgentDatagramPath = new AgentDatagramPath(
    deps.datapath ?? jsDatapath,
    clock,
    sink,
    (buf, from) => peers.ingress(buf, from),
    (mode) => events.emit({ type: 'agent-datagram-mode', at: clock.wallNow(), mode }),
  );
  const local: LocalServices = new LocalServices(config.expose, {
    agent: config.name,
    clock,
    events,
    nextFlowId: deps.nextFlowId,
    streamDialer: deps.streamDialer ?? new DirectStreamDialer(undefined, { clock }),
    datagramDialer: deps.datagramDialer ?? new DirectDatagramDialer(),
    send: (tag, payload) => {
      if (!peers.sendExposed(tag, payload)) path.send(tag, payload);
    },
    sendClose: (tag) => {
      peers.exposedClosed(tag);
      path.sendClose(tag);
    },
    budget: new SendBudget(config.datagramBudget, clock, events, path.counters.shed),
  });
  const peers: Peers = new Peers(config, {
    clock,
    path,
    deliverExposed: (tag, origin, payload) => local.onGatewayDatagram(tag, origin, payload),
    changed: (link) => events.emit({ type: 'peer-path', at: clock.wallNow(), peer: link.peer, state: link.shownState, path: link.path, reason: link.diagnosis().reason }),
    iceTiming: deps.iceTiming,
  });
  return { path, local, peers };
}
