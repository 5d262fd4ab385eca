import type { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { RouteRuntime } from '../listen/route.js';
import {
  MAX_DATAGRAM_PAYLOAD_BYTES, PEER_TAG_BIT, type ControlMessage, type DatagramOrigin, type Hello, type Publish, type RefusalCode, type ServiceHealth,
} from '../protocol/tunnel/index.js';
import type { DatagramReceiver, DialOptions } from '../upstream/dialer.js';
import type { AgentTunnel } from '../upstream/agent/agent-tunnel.js';
import { CHANNEL_BACKLOG_BYTES, type ChannelEnd, type ControlChannel } from '../upstream/agent/control-channel.js';
import { StreamMux } from '../upstream/agent/stream-mux.js';
import { Connectee, type ConnecteeUplink, type OffloadedTag } from './connectee.js';
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
import { returnDataConn } from './data-conn-return.js';
import { DataConnStream } from '../upstream/agent/data-conn-stream.js';
import type { LinkDataConns } from './data-conns.js';
import { dataConnStart } from './data-conn-ready.js';

/** A public listener of one of the agent's services. */
export interface PublishedService {
  readonly serviceId: number;
  readonly name: string;
  readonly transport: 'tcp' | 'udp';
  readonly route: RouteRuntime;
  /** A port range's size (absent = one port) or the name claimed on the shared port, as published. */
  readonly ports?: number;
  readonly serverName?: string;
  /** True after a resume until the agent publishes it again; stale services are closed. */
  stale: boolean;
  /** A member of an agent pool: `route` is the pool's shared listener, and this leaves the pool instead of closing it. */
  readonly leave?: () => Promise<void>;
}

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


/** A connectee's origin as a DATAGRAM frame carries it (with the public port for a range service). */
function originOf(c: Connectee): DatagramOrigin {
  return c.port === undefined ? { serviceId: c.serviceId, client: c.client } : { serviceId: c.serviceId, client: c.client, port: c.port };
}

/** Peer flows have no public route to report budget drops on: they are counted per agent only. */
const noRoute = { routeName: (): undefined => undefined };

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
  readonly services = new Map<number, PublishedService>();
  readonly #publishing = new Set<number>();
  readonly #connectees = new ConnecteeTable();
  readonly #udp: AgentUdp;
  #channel: ControlChannel | null = null;
  #mux: StreamMux | null = null;
  /** The agent has sent something after AUTH_OK, so it reads frames at the full size (control-channel.ts). */
  #peerReady = false;
  #grace: Timer | undefined;
  #republish: Timer | undefined;
  /** Key sets kept for the resume grace period; close forgets them at once. */
  readonly #retiring = new Set<() => void>();
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

  constructor(
    readonly name: string,
    private readonly host: LinkHost,
    remote: Endpoint,
  ) {
    this.remote = remote;
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
      const previous = this.#udp.keepNewest();
      const retire = () => {
        timer.cancel();
        this.#retiring.delete(retire);
        previous.forEach((k) => this.host.forgetKey(k.keyId));
      };
      const timer = this.host.clock.setTimeout(retire, this.host.resumeGraceMs);
      this.#retiring.add(retire);
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
    for (const retire of [...this.#retiring]) retire();
    this.budget.close();
    const routes = [...this.services.values()].map((s) => this.#closeService(s));
    this.services.clear();
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
    await this.#closeService(s);
  }

  async #closeService(s: PublishedService): Promise<void> {
    if (s.leave) return s.leave();
    await s.route.close('upstream-closed');
    this.host.serviceClosed(this, s);
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
    // On an idle data connection when the caller joins one and the agent has one; else multiplexed.
    const conns = opts.connRelay && this.streams < this.host.maxStreams ? this.dataConns : undefined;
    const d = conns?.take();
    if (!d) return mux.openEarly(serviceId, client, server, opts.timeoutMs, settled);
    this.#dataStreams++;
    this.host.counters.dataConnStreams++;
    const stream = new DataConnStream(d.conn, d.keys, dataConnStart(this.host, (_why, done) => mux.openEarly(serviceId, client, server, opts.timeoutMs, done)), settled, () => void this.#dataStreams--, (conn) => returnDataConn(conn, conns!, this.host.clock, this.host.counters));
    stream.cancel = mux.openOnData(serviceId, client, server, d.counter, opts.timeoutMs, (err) => stream.answered(err));
    return stream;
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

  /** Sealed UDP while the agent's address is fresh, else a DATAGRAM frame unless the channel is backed up. */
  #sendDatagram(tag: number, payload: Buffer, origin: Connectee | undefined): boolean {
    const counters = this.host.counters;
    // A range service's origin names the port: 2 bytes more while it rides (origin-block.ts).
    if (payload.length > MAX_DATAGRAM_PAYLOAD_BYTES - (origin?.port === undefined ? 0 : 2)) {
      counters.datagramsToAgentDropped++;
      return false;
    }
    if (this.#udp.send(tag, payload, origin?.originBlock)) {
      counters.datagramsToAgent++;
      return true;
    }
    const ch = this.#channel;
    if (ch && this.#peerReady && ch.backlog < CHANNEL_BACKLOG_BYTES) {
      ch.send({ type: 'datagram', tag, origin: origin && originOf(origin), payload });
      counters.datagramsToAgentOverTls++;
      return true;
    }
    counters.datagramsToAgentDropped++;
    return false;
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
    if (c.closed || !c.answered || this.#state === 'closed') return null;
    const now = this.#udp.current();
    if (now === undefined) return null;
    const { keys, address } = now;
    const tag = c.tag;
    const counters = this.host.counters;
    return {
      kind: 'tunnel',
      sealer: keys.sealer,
      opener: keys.opener,
      tag,
      peer: address,
      pinPeer: true,
      grant: (want) => this.budget.take(c.fair, want),
      pools: this.budget.pools,
      charge: (n) => this.budget.charge(c.fair, n),
      // A relayed peer flow's drops are counted on the budget, not per route (as in sendTagged).
      dropped: (b, s) => this.budget.countDrops(c.fair, b, s, c instanceof Connectee ? c : noRoute),
      forwarded: (to, from) => {
        counters.datagramsToAgent += to;
        counters.datagramsFromAgent += from;
      },
      valid: () => !c.closed && c.tag === tag && this.#state !== 'closed' && this.#udp.isCurrent(keys, address),
      groups: [this.#offloads, c.offloads],
    };
  }

  dropConnectee(c: Connectee): void {
    if (!this.#connectees.forget(c)) return;
    if (this.#peerReady) this.#channel?.send({ type: 'datagram-close', tag: c.tag });
  }

  #deliver(tag: number, payload: Buffer): void {
    if (tag >= PEER_TAG_BIT) return this.host.peers.fromOpener(this, tag, payload);
    const c = this.#connectees.find(tag);
    if (!c || c.closed) {
      // The public session is gone; tell the agent to drop its side.
      if (this.#peerReady) this.#channel?.send({ type: 'datagram-close', tag });
      return;
    }
    // Only an answer on the current tag shows the agent knows it; one on an old alias does not.
    if (c.tag === tag) c.answered = true;
    c.receiver.onUpstreamDatagram(payload);
  }

  // ---- control messages ----

  #onMessage(m: ControlMessage): void {
    this.#peerReady = true;
    if (this.#mux?.handle(m) || this.host.peers.handle(this, m)) return;
    const ch = this.#channel;
    switch (m.type) {
      case 'publish':
        if (this.#publishing.has(m.serviceId)) {
          ch?.send({ type: 'publish-error', serviceId: m.serviceId, code: 'duplicate-service', message: `service id ${m.serviceId} is being published` });
          return;
        }
        this.#publishing.add(m.serviceId);
        void this.host.publish(this, m).then((answer) => {
          this.#publishing.delete(m.serviceId);
          if (this.#channel === ch) ch?.send(answer);
        });
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
