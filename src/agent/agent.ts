import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { formatHostPort } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { AgentConfig } from '../config/expose-config.js';
import type { EventStream } from '../observe/events.js';
import type { ControlMessage } from '../protocol/tunnel/index.js';
import { DirectStreamDialer } from '../upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../upstream/direct/udp-dialer.js';
import { systemResolver, type Resolver } from '../upstream/direct/resolve.js';
import type { DatagramDialer, StreamDialer } from '../upstream/dialer.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import type { UdpSession } from '../session/udp-session.js';
import { AgentDatagramPath, type AgentDatagramCounters, type DatagramMode, type DatagramSink } from './datagram-path.js';
import type { AgentState } from './agent-state.js';
import { GatewayHome, type AgentCounters, type HomeHost } from './gateway-home.js';
import { homeTargets, sumCounters, type HomeTarget } from './home-targets.js';
import { LocalServices, type ExposedService } from './local-services.js';
import { SendBudget } from '../upstream/agent/send-budget.js';
import { PEER_TAG_BIT } from '../protocol/tunnel/index.js';
import type { RouteRuntime } from '../listen/route.js';
import type { RouteDepsSource } from '../listen/route.js';
import type { IceTiming } from '../ice/agent.js';
import { startConnectListeners } from './connect-listeners.js';
import { Peers, type PeerControl, type PeerDatagramPath } from './peers.js';

export type { AgentCounters };

export interface AgentDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly nextFlowId: () => number;
  readonly resolver?: Resolver;
  readonly streamDialer?: StreamDialer;
  readonly datagramDialer?: DatagramDialer;
  /** How the datagram socket to the gateway moves packets (the node's; js when absent). */
  readonly datapath?: UdpDatapath;
  /** How data connections and their local services are dialed (the node's stream datapath; js when absent). */
  readonly streamDatapath?: StreamDatapath;
  /** For tests: a fixed source of randomness for the backoff jitter. */
  readonly random?: () => number;
  /** Admission, flow ids and datapath for the `connect` listeners (the node's); none when absent. */
  readonly routeDeps?: RouteDepsSource;
  /** For tests: shorter ICE timers. */
  readonly iceTiming?: Partial<IceTiming>;
}

/**
 * Publishes local services on one gateway or several (docs/expose.md; docs/fleet.md, "Agents on a
 * fleet"). Each gateway is a GatewayHome: its own control connection, reconnected with its own
 * exponential backoff and jitter, its own datagram path and its own UDP sessions toward the local
 * services; each new connection re-publishes every service there. The agent works while any
 * subset of its homes is up. The peers (docs/connect.md) ride one home, the carrier: the first
 * connected one in list order.
 */
export class Agent {
  readonly counters: AgentCounters = { connects: 0, resumed: 0, refused: {}, publishRefused: {}, trunkEnds: {} };
  readonly #abort = new AbortController();
  readonly peers: Peers;
  /** The `connect` listeners, bound before the agent first connects. */
  connectRoutes: readonly RouteRuntime[] = [];
  /** One per gateway, in the order of `agent.gateways` (a name resolved to several addresses gives one per address). */
  readonly homes: GatewayHome[] = [];
  /** The home the peers ride (kept while it is down and no other is up). */
  #carrier: GatewayHome | undefined;
  #carrierAttached = false;
  readonly #controls = new Map<GatewayHome, PeerControl>();
  #closed = false;
  #config: AgentConfig;
  #ca: Buffer | undefined;
  readonly #host: HomeHost;

  private constructor(
    config: AgentConfig,
    private readonly deps: AgentDeps,
    ca: Buffer | undefined,
  ) {
    this.#config = config;
    this.#ca = ca;
    const { clock, events } = deps;
    const carrierPath = () => (this.#carrier ?? this.homes[0])?.path;
    // The peers see the carrier's datagram path, whichever home that is now.
    const path: PeerDatagramPath = {
      send: (tag, payload) => carrierPath()?.send(tag, payload),
      sendOverChannel: (tag, payload) => carrierPath()?.sendOverChannel(tag, payload) ?? false,
      sendClose: (tag) => carrierPath()?.sendClose(tag),
      iceSocket: () => carrierPath()?.iceSocket(),
      gatewayStun: () => carrierPath()?.gatewayStun(),
      opener: (opts) => carrierPath()!.opener(opts),
      sealer: (opts) => carrierPath()!.sealer(opts),
      offloadEnd: (tag, budget) => carrierPath()?.offloadEnd(tag, budget) ?? null,
    };
    this.peers = new Peers(config, {
      clock,
      events,
      path,
      deliverExposed: (tag, origin, payload) => (this.#carrier ?? this.homes[0])?.local.onGatewayDatagram(tag, origin, payload),
      changed: (link) => events.emit({ type: 'peer-path', at: clock.wallNow(), peer: link.peer, state: link.shownState, path: link.path, reason: link.diagnosis().reason }),
      iceTiming: deps.iceTiming,
    });
    this.#host = {
      clock,
      events,
      resolver: deps.resolver,
      random: deps.random,
      counters: this.counters,
      signal: this.#abort.signal,
      ...(deps.streamDatapath ? { streamDatapath: deps.streamDatapath } : {}),
      config: () => this.#config,
      ca: () => this.#ca,
      carriesPeers: (home) => this.#carriesPeers(home),
      up: (home, control) => this.#up(home, control),
      down: (home) => this.#down(home),
      mayConnect: (home) => this.#mayConnect(home),
      peerMessage: (home, m) => this.#peerMessage(home, m),
      notResumed: (home) => {
        if (home === this.#carrier) this.peers.resetExposed();
      },
    };
  }

  /**
   * Binds the `connect` listeners on the peers, then starts connecting to every gateway in the
   * background; never waits for a gateway. A listener that cannot bind fails the start, and what
   * was built is closed.
   */
  static async start(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
    const ca = config.ca === undefined ? undefined : await readFile(config.ca);
    const targets = await homeTargets(config, deps.resolver ?? systemResolver);
    const agent = new Agent(config, deps, ca);
    try {
      agent.connectRoutes = await startConnectListeners(config.connect, agent.peers, {
        clock: deps.clock, events: deps.events, routeDeps: deps.routeDeps, nextFlowId: deps.nextFlowId,
      });
    } catch (err) {
      agent.peers.close();
      throw err;
    }
    for (const t of targets) agent.homes.push(agent.#buildHome(t));
    return agent;
  }

  get config(): AgentConfig {
    return this.#config;
  }

  /**
   * Takes new connection settings (gateways, token, pins, CA, server name, backoff, homes) from a
   * reloaded config and connects with them at once; every other key must be unchanged
   * (`agentChange`). A gateway still in the list keeps its home and its connection (reconnected
   * only when the token, pins, CA, server name or backoff changed; its UDP sessions stay when the
   * gateway resumes); new ones get a home, dropped ones are closed (GOAWAY). One gateway replaced
   * by one other keeps its home too, as a single-gateway agent always did. Rejects, keeping the old
   * settings, when the CA file cannot be read.
   */
  async updateConnection(next: AgentConfig): Promise<void> {
    const ca = next.ca === undefined ? undefined : await readFile(next.ca);
    const targets = await homeTargets(next, this.deps.resolver ?? systemResolver);
    const was = this.#config;
    // A kept gateway reconnects when what its connection used changed; a list change alone leaves it be.
    const same = (k: 'token' | 'fingerprint' | 'fingerprints' | 'ca' | 'serverName' | 'reconnect') => isDeepStrictEqual(was[k], next[k]);
    const credentials = !(same('token') && same('fingerprint') && same('fingerprints') && same('ca') && same('serverName') && same('reconnect'));
    this.#config = next;
    this.#ca = ca;
    if (this.#closed) return;
    const single = targets.length === 1 && this.homes.length === 1;
    const old = new Map(this.homes.map((h) => [single ? 'only' : h.label, h] as const));
    this.homes.length = 0;
    const kept: [GatewayHome, HomeTarget][] = [];
    for (const t of targets) {
      const h = old.get(single ? 'only' : formatHostPort(t.gateway.host, t.gateway.port));
      if (h) {
        old.delete(single ? 'only' : h.label);
        kept.push([h, t]);
        this.homes.push(h);
      } else this.homes.push(this.#buildHome(t));
    }
    await Promise.all([...old.values()].map((h) => this.#closeHome(h)));
    for (const [h, t] of kept) {
      if (single || credentials || h.label !== formatHostPort(t.gateway.host, t.gateway.port) || h.serverName !== t.serverName) h.update(t.gateway, t.serverName);
    }
  }

  /**
   * The agent as one: closed after close(); connected while any home is; else connecting while
   * any attempt runs; else waiting.
   */
  get state(): AgentState {
    if (this.#closed) return 'closed';
    const states = this.homes.map((h) => h.state);
    for (const s of ['connected', 'connecting', 'waiting'] as const) if (states.includes(s)) return s;
    return states[0] ?? 'connecting';
  }

  /** The home the views show first: the carrier while connected, else the first connected one, else the first. */
  get #shown(): GatewayHome | undefined {
    const c = this.#carrier;
    if (c?.state === 'connected') return c;
    return this.homes.find((h) => h.state === 'connected') ?? this.homes[0];
  }

  /** When the shown home's connection authenticated; undefined while none is connected. */
  get connectedSince(): number | undefined {
    return this.#shown?.connectedSince;
  }

  /** The latest failed attempt or lost connection of any home. */
  get lastDisconnect(): GatewayHome['lastDisconnect'] {
    let last: GatewayHome['lastDisconnect'];
    for (const h of this.homes) if (h.lastDisconnect && (!last || h.lastDisconnect.at >= last.at)) last = h.lastDisconnect;
    return last;
  }

  get datagramMode(): DatagramMode {
    return this.#shown?.path.mode ?? 'tls';
  }

  /** The datagram counters: the one home's, or the sum over the homes. */
  get datagramCounters(): AgentDatagramCounters {
    return this.homes.length === 1 ? this.homes[0]!.path.counters : sumCounters(this.homes.map((h) => h.path.counters));
  }

  /** The local services as the shown home holds them (its PUBLISH answers). */
  get local(): LocalServices {
    return this.#shown!.local;
  }

  services(): readonly ExposedService[] {
    return this.local.services;
  }

  /** The open UDP sessions toward local services over every home. */
  *udpSessions(): IterableIterator<UdpSession> {
    for (const h of this.homes) yield* h.local.udpSessions();
  }

  /** Open UDP sessions per service route, summed over the homes. */
  activeCounts(): { route: string; proto: 'udp'; active: number }[] {
    const sum = new Map<string, number>();
    for (const h of this.homes) for (const c of h.local.activeCounts()) sum.set(c.route, (sum.get(c.route) ?? 0) + c.active);
    return [...sum].map(([route, active]) => ({ route, proto: 'udp' as const, active }));
  }

  /** Closes every current connection now and reconnects at once (tests, and operators after a network change). */
  reconnectNow(): void {
    for (const h of this.homes) h.reconnectNow();
  }

  /** Says GOAWAY(shutting-down) on every connection, closes everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return void (await Promise.all(this.homes.map((h) => h.done)));
    this.#closed = true;
    this.#abort.abort();
    await Promise.all(this.homes.map((h) => h.close()));
    await Promise.all(this.connectRoutes.map((r) => r.close('shutdown')));
    this.peers.close();
    for (const h of this.homes) {
      h.local.close();
      h.path.close();
    }
  }

  async #closeHome(h: GatewayHome): Promise<void> {
    await h.close();
    this.#down(h);
    h.local.close();
    h.path.close();
  }

  #carriesPeers(home: GatewayHome): boolean {
    return home === (this.#carrier ?? this.homes[0]);
  }

  #up(home: GatewayHome, control: PeerControl): void {
    this.#controls.set(home, control);
    this.#chooseCarrier();
  }

  #down(home: GatewayHome): void {
    this.#controls.delete(home);
    this.#chooseCarrier();
    if (!this.homes.includes(home) && this.#carrier === home) this.#carrier = undefined;
    // A held home was lost: a standby one may take its place.
    for (const h of this.homes) if (h !== home) h.wake();
  }

  /**
   * The peers ride the first connected gateway in list order: agents with the same list agree on
   * one gateway whenever it is up, so their signalling meets there. A change re-opens the flows on
   * the new carrier (the old gateway's flows idle out there).
   */
  #chooseCarrier(): void {
    const best = this.homes.find((h) => this.#controls.has(h));
    if (this.#carrierAttached && best === this.#carrier) return;
    if (this.#carrierAttached) {
      this.peers.detach();
      this.#carrierAttached = false;
    }
    if (!best) return;
    // Tags of exposed flows are the old gateway's: meaningless on another one.
    if (this.#carrier !== undefined && this.#carrier !== best) this.peers.resetExposed();
    this.#carrier = best;
    this.peers.attach(this.#controls.get(best)!);
    this.#carrierAttached = true;
  }

  #mayConnect(home: GatewayHome): boolean {
    const limit = this.#config.homes;
    if (limit === undefined) return true;
    let held = 0;
    for (const h of this.homes) if (h !== home && (h.state === 'connecting' || h.state === 'connected')) held++;
    return held < limit;
  }

  /** The peers' messages of the carrier; on another home they are dropped (the peers do not ride it). */
  #peerMessage(home: GatewayHome, m: ControlMessage): boolean {
    if (this.#carriesPeers(home)) return this.peers.handle(m);
    switch (m.type) {
      case 'signal':
      case 'signal-error':
      case 'peer-flow':
      case 'peer-open-ok':
      case 'peer-open-error':
        return true;
      case 'datagram':
        return (m.tag & PEER_TAG_BIT) !== 0;
      default:
        return false;
    }
  }

  #buildHome(t: HomeTarget): GatewayHome {
    const { clock, events } = this.deps;
    const peers = this.peers;
    const carries = () => this.#carriesPeers(home);
    const sink: DatagramSink = {
      onGatewayDatagram: (tag, o, p) => {
        if (tag & PEER_TAG_BIT) {
          if (carries()) peers.onRelayDatagram(tag, p);
          return;
        }
        if (carries()) peers.relayArrived(tag);
        local.onGatewayDatagram(tag, o, p);
      },
      onGatewayClose: (tag) => local.onGatewayClose(tag),
    };
    const path: AgentDatagramPath = new AgentDatagramPath(
      this.deps.datapath ?? jsDatapath,
      clock,
      sink,
      (buf, from) => peers.ingress(buf, from),
      (mode) => events.emit({ type: 'agent-datagram-mode', at: clock.wallNow(), mode }),
    );
    const config = this.#config;
    const local: LocalServices = new LocalServices(config.expose, {
      agent: config.name,
      clock,
      events,
      nextFlowId: this.deps.nextFlowId,
      streamDialer: this.deps.streamDialer ?? new DirectStreamDialer(undefined, { clock }),
      ...(this.deps.streamDatapath ? { streamDatapath: this.deps.streamDatapath } : {}),
      datagramDialer: this.deps.datagramDialer ?? new DirectDatagramDialer(),
      send: (tag, payload) => {
        if (!(carries() && peers.sendExposed(tag, payload))) path.send(tag, payload);
      },
      sendClose: (tag) => {
        if (carries()) peers.exposedClosed(tag);
        path.sendClose(tag);
      },
      // A peer's flow is forwarded over the path it came by (peers.ts).
      offloadEnd: (tag, budget) => (carries() ? peers.offloadExposed(tag, budget, () => path.offloadEnd(tag, budget)) : path.offloadEnd(tag, budget)),
      budget: new SendBudget(config.datagramBudget, clock, events, path.counters.shed),
    });
    const home: GatewayHome = new GatewayHome(t.gateway, t.serverName, path, local, this.#host);
    return home;
  }
}
