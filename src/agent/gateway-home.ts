import { randomInt } from 'node:crypto';
import type tls from 'node:tls';
import { canonicalIp, formatHostPort, type HostPort } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { AgentConfig } from '../config/expose-config.js';
import type { EventStream } from '../observe/events.js';
import { Backoff } from '../core/backoff.js';
import { dataConnAlpn, trunkAlpn, type ControlMessage, type RefusalCode } from '../protocol/tunnel/index.js';
import { resolveDestination, systemResolver, type Resolver } from '../upstream/direct/resolve.js';
import type { ControlChannel } from '../upstream/agent/control-channel.js';
import { StreamMux } from '../upstream/agent/stream-mux.js';
import type { AgentDatagramPath } from './datagram-path.js';
import { nextAgentState, type AgentState } from './agent-state.js';
import { connectToGateway, GatewayConnectError, type ConnectFailure } from './gateway-connection.js';
import { DataStreamStops } from './data-stream-stops.js';
import { DataConnPool } from './data-conn-pool.js';
import { AgentTrunks, DataCounter } from './trunk-pool.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import { jsStreamDatapath } from '../datapath/js-stream-datapath.js';
import type { ExposedService, LocalServices } from './local-services.js';
import type { PeerControl } from './peers.js';
import { poolTrailer, startLocalChecks } from './pool-membership.js';

export interface AgentCounters {
  connects: number;
  resumed: number;
  refused: Partial<Record<ConnectFailure, number>>;
  publishRefused: Partial<Record<RefusalCode, number>>;
  /** Trunks ended, by why (AgentTrunkOptions.ended). */
  trunkEnds: Partial<Record<string, number>>;
}

/** Longest a connection attempt (TCP, TLS, authentication) may take. */
const CONNECT_TIMEOUT_MS = 15_000;
/** Streams the gateway may have open on one connection; more are reset with `limit`. */
const MAX_STREAMS = 4096;

/** The agent's side of its homes: the peers ride one of them, and `homes: N` decides who may connect. */
export interface HomeHost {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly resolver?: Resolver;
  readonly random?: () => number;
  readonly counters: AgentCounters;
  readonly signal: AbortSignal;
  /** How data connections to the gateway are dialed (the node's stream datapath; js when absent). */
  readonly streamDatapath?: StreamDatapath;
  config(): AgentConfig;
  ca(): Buffer | undefined;
  /** Whether this home's messages and datagrams concern the peers (it carries them now). */
  carriesPeers(home: GatewayHome): boolean;
  /** A connection is up (services published): the peers may ride it. */
  up(home: GatewayHome, control: PeerControl): void;
  /** The connection of `home` ended (or its attempt failed). */
  down(home: GatewayHome): void;
  /** Whether `home` may start an attempt now (`agent.homes`); false parks it in `standby`. */
  mayConnect(home: GatewayHome): boolean;
  /** A message of this home's control channel for the peers; false when not theirs. */
  peerMessage(home: GatewayHome, m: ControlMessage): boolean;
  /** Connection not resumed by the gateway: the peers' exposed tags of this home are gone. */
  notResumed(home: GatewayHome): void;
}

/**
 * One gateway the agent is homed on (docs/fleet.md, "Agents on a fleet"): its control connection,
 * reconnected with its own exponential backoff and jitter, its datagram path (one UDP socket kept
 * for the home's whole life) and its local services' sessions (tags are the gateway's, so each
 * home has its own; a reply goes back through the gateway that carried the request). Each new
 * connection re-publishes every service on this gateway.
 */
export class GatewayHome {
  #state: AgentState = 'connecting';
  #backoff: Backoff;
  /** Wall ms when the current connection authenticated; undefined while not connected. */
  connectedSince: number | undefined;
  /** The idle data connections of the current control connection, when the gateway agreed to them. */
  dataConns: DataConnPool | undefined;
  /** The current control connection's trunks, when both ends have them (trunk-pool.ts). */
  trunks: AgentTrunks | undefined;
  lastDisconnect: { readonly failure: ConnectFailure | 'lost'; readonly message: string; readonly at: number } | undefined;
  /** The gateway's address this home last connected to (after resolving), for the views. */
  address: string | undefined;
  #channel: ControlChannel | null = null;
  #wait: Timer | undefined;
  #wake: (() => void) | undefined;
  #closed = false;
  /** Pool members' own checks of their local services, reported on this home's connection. */
  readonly #checks: ReturnType<typeof startLocalChecks>;
  readonly done: Promise<void>;

  constructor(
    /** Where to connect: an address, or a name resolved on each attempt. */
    public gateway: HostPort,
    /** The TLS server name when `gateway` was resolved from a name (one home per address). */
    public serverName: string | undefined,
    readonly path: AgentDatagramPath,
    readonly local: LocalServices,
    private readonly host: HomeHost,
  ) {
    this.#backoff = newBackoff(host.config(), host.random);
    this.#checks = startLocalChecks(local.services, host.clock, (m) => this.#channel?.send(m) ?? false);
    this.done = this.#run();
  }

  get state(): AgentState {
    return this.#state;
  }

  get label(): string {
    return formatHostPort(this.gateway.host, this.gateway.port);
  }

  #move(to: AgentState): void {
    this.#state = nextAgentState(this.#state, to);
  }

  /** New settings from a reload: a new backoff, and connect again at once. */
  update(gateway: HostPort, serverName: string | undefined): void {
    this.gateway = gateway;
    this.serverName = serverName;
    this.#backoff = newBackoff(this.host.config(), this.host.random);
    this.reconnectNow();
  }

  reconnectNow(): void {
    this.#channel?.destroy({ error: new Error('reconnect requested') });
    this.#wait?.cancel();
    this.#wake?.();
  }

  /** A parked (`standby`) home may try now. */
  wake(): void {
    if (this.#state === 'standby') this.#wake?.();
  }

  /** Says GOAWAY(shutting-down) and stops reconnecting; resolves when the loop ended. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#state !== 'closed') this.#move('closed');
      this.#channel?.close('shutting-down', 'the agent is shutting down');
      this.#wait?.cancel();
      this.#wake?.();
      this.#checks.close();
    }
    await this.done;
  }

  get #stopped(): boolean {
    return this.#closed || this.host.signal.aborted;
  }

  async #run(): Promise<void> {
    // A home past `homes: N` starts parked.
    if (!this.host.mayConnect(this)) {
      await this.#park();
      if (!this.#stopped) this.#move('connecting');
    }
    while (!this.#stopped) {
      let failure: ConnectFailure | 'lost' = 'lost';
      let message = 'the connection ended';
      try {
        message = await this.#connectOnce();
      } catch (err) {
        failure = err instanceof GatewayConnectError ? err.failure : 'closed';
        message = (err as Error).message;
        if (failure !== 'closed' || !this.#stopped) this.host.counters.refused[failure] = (this.host.counters.refused[failure] ?? 0) + 1;
      }
      if (this.#stopped) break;
      this.#move('waiting');
      this.connectedSince = undefined;
      this.lastDisconnect = { failure, message, at: this.host.clock.wallNow() };
      this.host.down(this);
      const delay = this.#backoff.next();
      this.host.events.emit({ type: 'agent-disconnected', at: this.host.clock.wallNow(), failure, message, retryInMs: delay });
      await this.#sleep(delay);
      if (this.#stopped) break;
      if (!this.host.mayConnect(this)) await this.#park();
      if (!this.#stopped) this.#move('connecting');
    }
  }

  /** In `standby` until `mayConnect` (checked on every wake) or close. */
  async #park(): Promise<void> {
    this.#move('standby');
    while (!this.#stopped && !this.host.mayConnect(this)) await this.#sleep(undefined);
  }

  /** Until `ms` passed (forever when undefined), or a wake, reconnect or close. */
  #sleep(ms: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      if (ms !== undefined) this.#wait = this.host.clock.setTimeout(resolve, ms);
    }).finally(() => {
      this.#wake = undefined;
      this.#wait?.cancel();
      this.#wait = undefined;
    });
  }

  /** One connection from TLS to its end; resolves with why it ended, rejects when it never authenticated. */
  async #connectOnce(): Promise<string> {
    const cfg = this.host.config();
    const { clock, events } = this.host;
    const remote = await resolveDestination(this.gateway, this.host.resolver ?? systemResolver, 'trusted');
    this.address = remote.address;
    const keyId = randomInt(1, 0xffff_ffff);
    const { channel, authOk, keys, binding } = await connectToGateway({
      host: remote.address,
      port: remote.port,
      name: cfg.name,
      token: cfg.token,
      fingerprint: cfg.fingerprint,
      ...(cfg.fingerprints && cfg.fingerprints.length > 1 ? { fingerprints: cfg.fingerprints } : {}),
      ca: this.host.ca(),
      serverName: cfg.serverName ?? this.serverName ?? (canonicalIp(this.gateway.host) ? undefined : this.gateway.host),
      datagramKeyId: keyId,
      resumeKeyId: this.path.gatewayKeyId,
      streamWindow: cfg.streamWindow,
      dataConnections: cfg.dataConnections > 0 || cfg.trunks > 0,
      timeoutMs: CONNECT_TIMEOUT_MS,
      clock,
      signal: this.host.signal,
      onKeys: (k) => this.path.prepare(keyId, k),
    });
    if (this.#stopped) {
      // close() ran while the handshake was finishing: this connection is not used.
      channel.close('shutting-down', 'the agent is shutting down');
      return 'closed while connecting';
    }
    this.#channel = channel;
    this.#move('connected');
    this.connectedSince = clock.wallNow();
    this.#backoff.reset();
    this.host.counters.connects++;
    if (authOk.resumed) this.host.counters.resumed++;
    else {
      // A new session at the gateway: its listeners are new, so no old bound address holds until it answers.
      for (const svc of this.local.services) svc.bound = undefined;
      this.local.resetUdp();
      this.host.notResumed(this);
      this.path.forgetKeys();
    }
    const socket = channel.socket as tls.TLSSocket;
    const gwIp = canonicalIp(socket.remoteAddress ?? remote.address)?.address ?? remote.address;
    const mux = new StreamMux(channel, { role: 'agent', localWindow: cfg.streamWindow, peerWindow: authOk.streamWindow, maxStreams: MAX_STREAMS }, (stream, m) =>
      this.local.onStreamOpen(stream, m, (s) => mux.accept(s)),
    );
    const pending = new Map<number, ExposedService>();
    // Data connections when the gateway agreed to them (docs/tunnel-protocol.md, "Data connections").
    const counter = new DataCounter();
    const dataConns = dataConnAlpn(socket.alpnProtocol)
      ? new DataConnPool({
          counter,
          datapath: this.host.streamDatapath ?? jsStreamDatapath,
          gateway: { address: gwIp, port: remote.port, family: canonicalIp(gwIp)?.family ?? 4 },
          tls: socket,
          size: cfg.dataConnections,
          clock,
          dialTimeoutMs: CONNECT_TIMEOUT_MS,
        })
      : undefined;
    this.dataConns = dataConns;
    // Trunks when the gateway agreed to them and this datapath has them (docs/tunnel-protocol.md, "Trunks").
    const streamDp = this.host.streamDatapath ?? jsStreamDatapath;
    const trunks = trunkAlpn(socket.alpnProtocol) && cfg.trunks > 0 && streamDp.trunk
      ? new AgentTrunks({ datapath: streamDp, gateway: { address: gwIp, port: remote.port, family: canonicalIp(gwIp)?.family ?? 4 }, tls: socket, count: cfg.trunks, clock, dialTimeoutMs: CONNECT_TIMEOUT_MS, counter, ended: (r) => void (this.host.counters.trunkEnds[r] = (this.host.counters.trunkEnds[r] ?? 0) + 1) })
      : undefined;
    this.trunks = trunks;
    const dataStreams = new DataStreamStops();
    channel.onMessage((m: ControlMessage) => {
      if (m.type === 'stream-open' && m.dataConnection !== undefined) {
        const id = m.streamId;
        const trunk = trunks?.get(m.dataConnection);
        if (trunk) {
          return this.local.onTrunkStreamOpen(m, trunk, (code) =>
            channel.send(code === undefined ? { type: 'stream-accept', streamId: id } : { type: 'stream-reset', streamId: id, code }),
          dataStreams.track(id));
        }
        return this.local.onDataStreamOpen(m, dataConns?.take(m.dataConnection), (code) =>
          channel.send(code === undefined ? { type: 'stream-accept', streamId: id } : { type: 'stream-reset', streamId: id, code }),
        dataStreams.track(id));
      }
      // The gateway gave up on a stream's data connection (no READY) and went multiplexed.
      if (m.type === 'stream-reset' && dataStreams.cancel(m.streamId)) return;
      if (mux.handle(m)) return;
      if (this.host.peerMessage(this, m)) return;
      switch (m.type) {
        case 'publish-ok': {
          const svc = pending.get(m.serviceId);
          if (!svc) return;
          svc.bound = m.bound;
          svc.refusal = undefined;
          events.emit({ type: 'agent-published', at: clock.wallNow(), service: svc.config.name, bound: m.bound });
          this.#checks.published(svc);
          return;
        }
        case 'publish-error': {
          const svc = pending.get(m.serviceId);
          if (svc) svc.refusal = { code: m.code, message: m.message };
          this.host.counters.publishRefused[m.code] = (this.host.counters.publishRefused[m.code] ?? 0) + 1;
          events.emit({ type: 'agent-publish-refused', at: clock.wallNow(), service: svc?.config.name ?? String(m.serviceId), code: m.code, message: m.message });
          return;
        }
        case 'datagram':
          this.path.onFrame(m.tag, m.origin, m.payload);
          return;
        case 'datagram-close':
          this.local.onGatewayClose(m.tag);
          return;
        default:
          return;
      }
    });
    const server = { address: gwIp, port: remote.port, family: canonicalIp(gwIp)?.family ?? 4 } as const;
    await this.path.attach(channel, keyId, keys, authOk.datagramKeyId, server, authOk.keepaliveIntervalMs, socket.localAddress);
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
        ...(svc.config.remotePorts !== undefined ? { ports: svc.config.remotePorts } : {}),
        ...(svc.config.serverName !== undefined ? { serverName: svc.config.serverName } : {}),
        ...(svc.config.pool ? { pool: poolTrailer(svc, cfg.name, binding) } : {}),
      });
    }
    // The gateway holds its own frames until it hears from us after AUTH_OK (control-channel.ts).
    channel.send({ type: 'ping', counter: 0 });
    this.host.up(this, {
      send: (m) => channel.send(m),
      openStream: (opts, beforeOpen) => mux.open(0, opts.client ?? server, opts.local ?? server, opts.timeoutMs, opts.signal, beforeOpen),
    });
    events.emit({ type: 'agent-connected', at: clock.wallNow(), gateway: formatHostPort(remote.address, remote.port), resumed: authOk.resumed });
    const end = await channel.ended;
    dataConns?.close();
    this.dataConns = undefined;
    trunks?.close();
    this.trunks = undefined;
    this.host.down(this);
    this.#channel = null;
    mux.destroyAll();
    this.path.detach(channel);
    if (end.goaway) return `the gateway said goaway ${end.goaway.code}: ${end.goaway.message}`;
    if (end.sent) return `closed here: ${end.sent}`;
    return end.error?.message ?? 'closed';
  }
}

const newBackoff = (c: AgentConfig, random?: () => number) =>
  new Backoff({ initialMs: c.reconnect.initialMs, maxMs: c.reconnect.maxMs, multiplier: 2, jitter: 0.3 }, random);
