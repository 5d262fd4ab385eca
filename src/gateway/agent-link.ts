import type { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import {
  PEER_TAG_BIT, type ControlMessage, type Hello, type Publish, type RefusalCode, type ServiceHealth,
} from '../protocol/tunnel/index.js';
import type { DatagramReceiver, DialOptions } from '../upstream/dialer.js';
import type { AgentTunnel } from '../upstream/agent/agent-tunnel.js';
import type { ChannelEnd, ControlChannel } from '../upstream/agent/control-channel.js';
import { StreamMux } from '../upstream/agent/stream-mux.js';
import type { Connectee, ConnecteeUplink, OffloadedTag } from './connectee.js';
import { ConnecteeTable } from './connectee-table.js';
import { nextAgentLinkState, type AgentLinkState } from './agent-link-state.js';
import { SendBudget, type FairSlot } from '../upstream/agent/send-budget.js';
import type { FairShareSettings } from '../core/fair-share.js';
import type { EventStream } from '../observe/events.js';
import type { GatewayCounters } from './counters.js';
import type { PeerRelay } from './peer-relay.js';
import type { RelayedLink } from './peer-flows.js';
import { AgentUdp, type KeySet } from './agent-udp.js';
import { OffloadGroup, type TunnelEnd } from '../datapath/offload.js';
import type { PublishedService } from './published-service.js';
import { LinkServices } from './link-services.js';
import { RetiringKeys } from './retiring-keys.js';
import { deliverDatagram, noRoute, sendDatagram, tunnelEndOf, type TunnelSide } from './link-datagrams.js';
import type { LinkDataConns } from './data-conns.js';
import { openOnDataConn } from './data-conn-open.js';
import { openOnTrunk } from './trunk-open.js';

export type { PublishedService } from './published-service.js';

/** What a link needs from the gateway that owns it. */
export interface LinkHost {
  readonly clock: Clock;
  readonly counters: GatewayCounters;
  readonly keepaliveIntervalMs: number;
  readonly localWindow: number;
  readonly maxStreams: number;
  readonly resumeGraceMs: number;
  /** How long after a resume the agent has to publish its services again. */
  readonly republishMs: number;
  /** Offers, SIGNAL and peer flows between agents (peer-relay.ts). */
  readonly peers: PeerRelay;
  sendUdp(buf: Buffer, port: number, address: string): void;
  /** The UDP socket's bound on what it answers to a source by itself (keepalive acks here). */
  readonly replies: UnverifiedReplyGuard;
  publish(link: AgentLink, m: Publish): Promise<ControlMessage>;
  forgetKey(keyId: number): void;
  /** Datagrams per second toward this agent, shared fairly among its sessions (0 = off), and where drops are reported. */
  readonly datagramBudget: FairShareSettings;
  readonly events?: EventStream;
  /** The link is closed for good; the registry drops it. */
  closed(link: AgentLink, reason: string): void;
  agentDown(link: AgentLink, end: ChannelEnd): void;
  /** A published service's public listener closed (UNPUBLISH, stale after a resume, or the link closed). */
  serviceClosed(link: AgentLink, service: PublishedService): void;
  /** SERVICE_HEALTH: the agent's own check of a pool member's local service. */
  serviceHealth?(link: AgentLink, m: ServiceHealth): void;
}


/**
 * One authenticated agent, kept across its control connections (docs/expose.md): its published
 * services, its UDP connectees, the datagram keys and the address its datagrams come from.
 *
 * Attached: a control connection is up. Detached: the connection is gone but the agent may come
 * back within `resumeGraceMs` with HELLO.resumeKeyId = the current key id; meanwhile public UDP
 * sessions keep working over UDP as long as its datagrams open, and the public listeners stay.
 * TCP streams ride the connection and end with it. Closed: everything released.
 * Its keys and UDP address (with the SPF-2 address rule) are agent-udp.ts's.
 */
export class AgentLink implements AgentTunnel, ConnecteeUplink, RelayedLink {
  #state: AgentLinkState = 'detached';
  readonly #services: LinkServices;
  /** The published services by id (link-services.ts); the gateway's publisher adds to it. */
  readonly services: Map<number, PublishedService>;
  readonly #connectees = new ConnecteeTable();
  readonly #udp: AgentUdp;
  #channel: ControlChannel | null = null;
  #mux: StreamMux | null = null;
  /** The agent has sent something after AUTH_OK, so it reads frames at the full size (control-channel.ts). */
  #peerReady = false;
  #grace: Timer | undefined;
  #republish: Timer | undefined;
  /** Key sets kept for the resume grace period; close forgets them at once. */
  readonly #retiring: RetiringKeys;
  remote: Endpoint;
  /** The current control connection's TLS binding (exportAuthBinding): what pool key proofs are bound to. */
  authBinding: Buffer = Buffer.alloc(0);
  readonly connectedAt: number;
  /** What may be sealed toward the agent, per session (docs/expose.md, "Fairness under a flood"). */
  readonly budget: SendBudget;
  /** Sessions forwarded in the native batch: closed when the keys or the agent's address change. */
  readonly #offloads = new OffloadGroup();
  /** The current control connection's data connections, when it negotiated them (data-conns.ts). */
  dataConns: LinkDataConns | undefined;
  /** Streams on data connections now (counted with the multiplexed ones against `maxStreams`). */
  #dataStreams = 0;
  /** What the native batch's tunnel sides read of this link (link-datagrams.ts). */
  readonly #tunnelSide: TunnelSide;

  constructor(
    readonly name: string,
    private readonly host: LinkHost,
    remote: Endpoint,
  ) {
    this.remote = remote;
    this.#services = new LinkServices({ publish: (m) => host.publish(this, m), closed: (s) => host.serviceClosed(this, s) });
    this.services = this.#services.byId;
    this.#retiring = new RetiringKeys(host.clock, (keyId) => host.forgetKey(keyId));
    this.connectedAt = host.clock.wallNow();
    this.#udp = new AgentUdp({
      clock: host.clock,
      counters: host.counters,
      keepaliveIntervalMs: host.keepaliveIntervalMs,
      replies: host.replies,
      sendUdp: (buf, port, address) => host.sendUdp(buf, port, address),
      exhausted: (message) => void this.close('internal', message),
      changed: () => this.#offloads.closeAll(),
    });
    this.budget = new SendBudget(host.datagramBudget, host.clock, host.events, host.counters.datagramsToAgentShed);
    this.#tunnelSide = { udp: this.#udp, budget: this.budget, counters: host.counters, offloads: this.#offloads, closed: () => this.#state === 'closed' };
  }

  /** See agent-link-state.ts; moved only through its transition table. */
  get state(): AgentLinkState {
    return this.#state;
  }

  #move(to: AgentLinkState): void {
    this.#state = nextAgentLinkState(this.#state, to);
  }

  get currentKeyId(): number {
    return this.#udp.currentKeyId;
  }

  get udpAddress(): { address: string; port: number } | undefined {
    return this.#udp.address;
  }

  /** True while the agent's UDP address has delivered an authenticated datagram recently. */
  get udpFresh(): boolean {
    return this.#udp.fresh;
  }

  /** Attached, and the agent has spoken since AUTH_OK (so it reads full-size frames): peers may reach it. */
  get reachable(): boolean {
    return this.#state === 'attached' && this.#peerReady;
  }

  get connectees(): number {
    return this.#connectees.size;
  }

  get streams(): number {
    return (this.#mux?.size ?? 0) + this.#dataStreams;
  }

  /**
   * Takes a freshly authenticated connection. `resumed`: the agent keeps its services and
   * connectees; otherwise the link is new. The previous connection, if any, is told it was
   * superseded.
   */
  attach(channel: ControlChannel, keys: KeySet, hello: Hello, remote: Endpoint, resumed: boolean): void {
    const old = this.#channel;
    this.#grace?.cancel();
    this.#grace = undefined;
    this.#channel = channel;
    this.#peerReady = false;
    this.remote = remote;
    this.#udp.add(keys);
    this.#move('attached');
    this.#mux?.destroyAll();
    const mux = new StreamMux(
      channel,
      { role: 'gateway', localWindow: this.host.localWindow, peerWindow: hello.streamWindow, maxStreams: this.host.maxStreams },
      (stream) => this.host.peers.streamOpened(this, stream, () => mux.accept(stream)),
    );
    this.#mux = mux;
    this.host.peers.attached(this, resumed);
    if (old && old.isOpen) old.close('superseded', 'a newer connection of this agent authenticated');
    if (resumed) {
      for (const s of this.services.values()) s.stale = true;
      this.#republish?.cancel();
      this.#republish = this.host.clock.setTimeout(() => this.#closeStale(), this.host.republishMs);
      // Old keys stay for the grace period: datagrams sealed before the agent switched still open.
      this.#retiring.retire(this.#udp.keepNewest(), this.host.resumeGraceMs);
    }
    channel.onMessage((m) => this.#onMessage(m));
    channel.startKeepalive(this.host.keepaliveIntervalMs);
    void channel.ended.then((end) => this.#lost(channel, end));
  }

  /** Ends the link: listeners close, sessions end, keys are forgotten. Idempotent. */
  close(code: RefusalCode, message: string): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    this.#move('closed');
    this.#grace?.cancel();
    this.#republish?.cancel();
    this.#channel?.close(code, message);
    this.#channel = null;
    this.#mux?.destroyAll(new SluiceError('SLUICE_ERR_CLOSED', `agent "${this.name}" is closed: ${message}`));
    for (const k of this.#udp.takeAll()) this.host.forgetKey(k.keyId);
    this.#retiring.forgetAll();
    this.budget.close();
    const routes = this.#services.closeAll();
    this.#connectees.closeAll();
    this.#offloads.closeAll();
    this.host.closed(this, message);
    return Promise.all(routes).then(() => {});
  }

  /** Closes one service's listener (UNPUBLISH, or stale after a resume). */
  async unpublish(serviceId: number): Promise<void> {
    const s = this.services.get(serviceId);
    if (!s) return;
    this.services.delete(serviceId);
    this.#connectees.endService(serviceId);
    await this.#services.close(s);
  }

  /** One control message to the agent, once it reads full-size frames; false when not sent. */
  send(m: ControlMessage): boolean {
    return this.#peerReady && (this.#channel?.send(m) ?? false);
  }

  // ---- AgentTunnel: the dialers of the public listeners ----

  async openStream(serviceId: number, client: Endpoint, server: Endpoint, opts: DialOptions): Promise<Duplex> {
    if (!this.#mux || this.#state !== 'attached') throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `agent "${this.name}" is not connected`);
    return this.#mux.open(serviceId, client, server, opts.timeoutMs, opts.signal);
  }

  openStreamEarly(serviceId: number, client: Endpoint, server: Endpoint, opts: DialOptions, settled: (err?: SluiceError) => void): Duplex {
    const mux = this.#mux;
    if (!mux || this.#state !== 'attached') throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `agent "${this.name}" is not connected`);
    // On a trunk, else an idle data connection, when the caller joins one and the agent has one; else multiplexed.
    const conns = opts.connRelay && this.streams < this.host.maxStreams ? this.dataConns : undefined;
    const trunk = conns?.trunks?.pick();
    if (trunk) {
      this.#dataStreams++;
      return openOnTrunk(this.host, mux, trunk, serviceId, client, server, opts, settled, () => void this.#dataStreams--);
    }
    const d = conns?.take();
    if (!d) return mux.openEarly(serviceId, client, server, opts.timeoutMs, settled);
    this.#dataStreams++;
    return openOnDataConn(this.host, mux, conns!, d, serviceId, client, server, opts, settled, () => void this.#dataStreams--);
  }

  openDatagram(serviceId: number, client: Endpoint, receiver: DatagramReceiver, retag = true, port?: number): Connectee {
    if (this.#state === 'closed') throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `agent "${this.name}" is gone`);
    return this.#connectees.open(this, serviceId, client, receiver, retag, port);
  }

  // ---- datagrams ----

  /** A datagram whose header named one of this link's key ids, from `address:port`. */
  onUdpDatagram(keys: KeySet, buf: Buffer, address: string, port: number): void {
    if (this.#state === 'closed') return;
    const d = this.#udp.open(keys, buf, address, port);
    if (d) this.#deliver(d.tag, d.payload);
  }

  /** Called by a connectee: one datagram toward the agent. */
  sendData(c: Connectee, payload: Buffer): void {
    // Before sealing: a flooding session loses its own excess, nobody else's share.
    if (!this.budget.admit(c.fair, c)) return;
    this.#sendDatagram(c.tag, payload, c.answered ? undefined : c);
  }

  /**
   * One datagram of a peer flow toward the agent on `tag`, without an origin; false when dropped
   * (by the agent's send budget too, for the flow's `fair` slot: counted there, not per route).
   */
  sendTagged(tag: number, payload: Buffer, fair?: FairSlot): boolean {
    if (fair !== undefined && !this.budget.admit(fair, noRoute)) return false;
    return this.#sendDatagram(tag, payload, undefined);
  }

  #sendDatagram(tag: number, payload: Buffer, origin: Connectee | undefined): boolean {
    return sendDatagram(this.#udp, this.#peerReady ? this.#channel : null, this.host.counters, tag, payload, origin);
  }

  /** Called by a connectee whose public session ended. */
  serviceRoute(serviceId: number): string | undefined {
    return this.services.get(serviceId)?.route.name;
  }

  /**
   * The tunnel side of connectee `c` for the native batch: once the agent has answered on its tag
   * (no origin block needed) and while UDP to the agent is fresh. Valid until the keys, the
   * agent's address, its freshness or the tag change (the table checks on its sweep).
   */
  offloadEnd(c: OffloadedTag): TunnelEnd | null {
    return tunnelEndOf(this.#tunnelSide, c);
  }

  dropConnectee(c: Connectee): void {
    if (!this.#connectees.forget(c)) return;
    if (this.#peerReady) this.#channel?.send({ type: 'datagram-close', tag: c.tag });
  }

  #deliver(tag: number, payload: Buffer): void {
    deliverDatagram(this.#connectees, this.host.peers, this, this.#peerReady ? this.#channel : null, tag, payload);
  }

  // ---- control messages ----

  #onMessage(m: ControlMessage): void {
    this.#peerReady = true;
    if (this.#mux?.handle(m) || this.host.peers.handle(this, m)) return;
    const ch = this.#channel;
    switch (m.type) {
      case 'publish':
        this.#services.publish(m, ch, () => this.#channel);
        return;
      case 'unpublish':
        this.host.peers.withdraw(this, m.serviceId);
        void this.unpublish(m.serviceId);
        return;
      case 'service-health':
        this.host.serviceHealth?.(this, m);
        return;
      case 'datagram':
        this.host.counters.datagramsFromAgentOverTls++;
        this.#deliver(m.tag, m.payload);
        return;
      case 'datagram-close': {
        if (m.tag >= PEER_TAG_BIT) return this.host.peers.closeFromOpener(this, m.tag);
        // The agent dropped its session: the next datagram of this client gets a new tag with an origin.
        this.#connectees.agentClosed(m.tag);
        return;
      }
      default:
        return;
    }
  }

  #lost(channel: ControlChannel, end: ChannelEnd): void {
    if (this.#channel !== channel) return; // superseded
    this.#channel = null;
    this.#mux?.destroyAll(new SluiceError('SLUICE_ERR_CLOSED', `agent "${this.name}" lost its control connection`));
    this.#mux = null;
    if (this.#state === 'closed') return;
    this.#move('detached');
    this.host.agentDown(this, end);
    if (end.goaway?.code === 'shutting-down') {
      void this.close('shutting-down', 'the agent shut down');
      return;
    }
    this.#grace = this.host.clock.setTimeout(() => void this.close('keepalive-timeout', 'the agent did not come back'), this.host.resumeGraceMs);
  }

  #closeStale(): void {
    this.host.peers.dropStale(this);
    for (const s of [...this.services.values()]) if (s.stale) void this.unpublish(s.serviceId);
  }
}
