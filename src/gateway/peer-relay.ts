import { TokenBucket } from '../core/token-bucket.js';
import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { RateLimit } from '../config/types.js';
import {
  PEER_TAG_BIT, type ControlMessage, type Offer, type PeerOpen, type RefusalCode, type ServiceTransport, type Signal,
} from '../protocol/tunnel/index.js';
import type { TunnelStream } from '../upstream/agent/tunnel-stream.js';
import type { GatewayCounters } from './counters.js';
import { OfferTable, allowed } from './peer-offers.js';
import { DatagramPeerFlow, StreamPeerFlow, type DatagramFlowSink, type PeerFlow, type RelayedLink } from './peer-flows.js';
import type { FleetPeers } from './fleet-peers.js';
import { RelayedFlowOffloads } from './peer-relay-offload.js';

/** SIGNALs one agent may send (ICE needs a few dozen per connection attempt). */
export const SIGNAL_RATE: RateLimit = { perSecond: 50, burst: 200 };
/** PEER_OPENs one agent may send: each makes a session (and a local socket) at the target agent. */
export const PEER_OPEN_RATE: RateLimit = { perSecond: 200, burst: 1000 };
/** How long a TCP PEER_OPEN waits for its STREAM_OPEN. */
export const PENDING_STREAM_MS = 10_000;
/** How long the target agent has to accept a relayed stream. */
export const PEER_DIAL_TIMEOUT_MS = 10_000;

export interface PeerRelayDeps {
  readonly clock: Clock;
  readonly counters: GatewayCounters;
  /** `gateway.maxPeerFlowsPerAgent`: UDP flows, relayed streams and pending TCP opens of one agent. */
  readonly maxFlowsPerAgent: number;
  /** The gateway's TCP address: the `server` of the STREAM_OPEN sent to the target agent. */
  server(): Endpoint;
  /** True for names of the gateway's `agents` table. */
  known(name: string): boolean;
  /** The current link of an agent, if any. */
  link(name: string): RelayedLink | undefined;
  /** The fleet's bridge toward agents on other gateways (fleet-peers.ts); absent = no fleet. */
  fleet?(): FleetPeers | undefined;
}

interface PendingStream {
  readonly target: RelayedLink;
  readonly serviceId: number;
  readonly timer: Timer;
}

/** The peer state of one agent link. */
class PeerSide {
  readonly offers = new OfferTable();
  readonly datagrams = new Map<number, DatagramPeerFlow>();
  readonly pending = new Map<number, PendingStream>();
  readonly streams = new Set<StreamPeerFlow>();
  readonly signals: TokenBucket;
  readonly opens: TokenBucket;
  /** Client ports of this agent's open UDP flows, as the targets see them (one per flow). */
  readonly #ports = new Set<number>();
  #nextPort = 1;

  constructor(
    readonly link: RelayedLink,
    clock: Clock,
  ) {
    this.signals = new TokenBucket(SIGNAL_RATE, clock);
    this.opens = new TokenBucket(PEER_OPEN_RATE, clock);
  }

  get name(): string {
    return this.link.name;
  }

  get flows(): number {
    return this.datagrams.size + this.pending.size + this.streams.size;
  }

  /**
   * A client port for a new UDP flow, unused by this agent's other flows: the target keys its
   * local sessions by client address and port, and every flow of one agent comes from one
   * address, so each flow needs its own number (at most maxPeerFlowsPerAgent < 65535 are open).
   */
  allocatePort(): number {
    for (;;) {
      const port = this.#nextPort;
      this.#nextPort = port >= 65535 ? 1 : port + 1;
      if (!this.#ports.has(port)) {
        this.#ports.add(port);
        return port;
      }
    }
  }

  releasePort(port: number): void {
    this.#ports.delete(port);
  }
}

/**
 * Agents reaching other agents' services through the gateway (issue 7; docs/tunnel-protocol.md
 * §8 "Peer flows"): the offers of every link, SIGNAL forwarding between agents that offer each
 * other something, and relayed flows opened with PEER_OPEN. A UDP flow is a connectee on the
 * target, exactly as a public client's; a TCP flow joins the opener's stream (its STREAM_OPEN
 * with an odd id) to a stream the gateway opens to the target.
 *
 * AgentLink delegates to it; it holds links only as long as they are not closed (`closed`).
 */
export class PeerRelay implements DatagramFlowSink {
  readonly #sides = new Map<RelayedLink, PeerSide>();
  /** UDP flows resealed in the native batch. */
  readonly #offloads: RelayedFlowOffloads;

  constructor(private readonly deps: PeerRelayDeps) {
    this.#offloads = new RelayedFlowOffloads(deps.counters, deps.clock);
  }

  /** The offers of `link` (read-only use: status, tests). */
  offers(link: RelayedLink): OfferTable {
    return this.#side(link).offers;
  }

  /** Open relayed flows right now (TCP counts pending opens too). */
  flowCounts(): Record<ServiceTransport, number> {
    let udp = 0;
    let tcp = 0;
    for (const s of this.#sides.values()) {
      udp += s.datagrams.size;
      tcp += s.streams.size + s.pending.size;
    }
    return { udp, tcp };
  }

  /** OFFER, PEER_OPEN and SIGNAL from `link`; false for any other message. */
  handle(link: RelayedLink, m: ControlMessage): boolean {
    switch (m.type) {
      case 'offer':
        this.#offer(link, m);
        return true;
      case 'peer-open':
        this.#peerOpen(link, m);
        return true;
      case 'signal':
        this.#signal(link, m);
        return true;
      default:
        return false;
    }
  }

  /** A datagram from `link` on a peer tag (PEER_TAG_BIT), over UDP or in a DATAGRAM frame. */
  fromOpener(link: RelayedLink, tag: number, payload: Buffer): void {
    const flow = this.#sides.get(link)?.datagrams.get(tag);
    if (!flow?.channel) {
      if (this.deps.fleet?.()?.fromOpener(link, tag, payload)) return;
      link.send({ type: 'datagram-close', tag });
      return;
    }
    this.deps.counters.peerDatagramsToService++;
    this.deps.counters.peerBytesToService += payload.length;
    flow.channel.send(payload, null);
    this.#offloads.step(flow, 0);
  }

  /** DATAGRAM_CLOSE from `link` on a peer tag: the opener dropped the flow. */
  closeFromOpener(link: RelayedLink, tag: number): void {
    const side = this.#sides.get(link);
    const flow = side?.datagrams.get(tag);
    if (!side || !flow) return void this.deps.fleet?.()?.closeFromOpener(link, tag);
    side.datagrams.delete(tag);
    side.releasePort(flow.clientPort);
    this.#forget(flow);
  }

  /** STREAM_OPEN from `link` (an odd id): relayed when a TCP PEER_OPEN announced it, else refused. */
  streamOpened(link: RelayedLink, stream: TunnelStream, accept: () => void): void {
    const side = this.#sides.get(link);
    const p = side?.pending.get(stream.id);
    if (!side || !p) return stream.reset('refused');
    side.pending.delete(stream.id);
    p.timer.cancel();
    const counters = this.deps.counters;
    if (p.target.state !== 'attached') {
      bump(counters.peerFlows.tcp, 'dial-failed');
      return stream.reset('dial-failed');
    }
    const flow = new StreamPeerFlow(link, stream, p.target, p.serviceId);
    side.streams.add(flow);
    flow.start(this.deps.server(), PEER_DIAL_TIMEOUT_MS, accept, {
      outcome: (result) => bump(counters.peerFlows.tcp, result),
      done: (toService, toOpener) => {
        side.streams.delete(flow);
        counters.peerStreamBytesToService += toService;
        counters.peerStreamBytesToOpener += toOpener;
      },
    });
  }

  /**
   * A control connection of `link` authenticated. Resumed: its offers stay, marked stale until
   * the agent offers them again (`dropStale`). TCP opens still pending belonged to the old
   * connection's streams and are dropped either way.
   */
  attached(link: RelayedLink, resumed: boolean): void {
    const side = this.#sides.get(link);
    if (!side) return;
    for (const p of side.pending.values()) p.timer.cancel();
    side.pending.clear();
    if (resumed) side.offers.markStale();
  }

  /** UNPUBLISH of `serviceId`: its offer goes too, and the flows into it. */
  withdraw(link: RelayedLink, serviceId: number): void {
    const side = this.#sides.get(link);
    if (side?.offers.withdraw(serviceId)) this.#revoke(side);
  }

  /** The resume's republish time is over: offers not sent again are gone. */
  dropStale(link: RelayedLink): void {
    const side = this.#sides.get(link);
    if (side && side.offers.dropStale().length > 0) this.#revoke(side);
  }

  /** `link` is closed for good: its own flows end, and every flow into it is closed toward its opener. */
  closed(link: RelayedLink): void {
    this.deps.fleet?.()?.closed(link.name);
    const side = this.#sides.get(link);
    if (!side) return;
    this.#sides.delete(link);
    for (const f of side.datagrams.values()) this.#forget(f);
    side.datagrams.clear();
    for (const p of side.pending.values()) p.timer.cancel();
    side.pending.clear();
    for (const f of [...side.streams]) f.destroy();
    this.#revoke(side, true);
  }

  // ---- DatagramFlowSink ----

  toOpener(flow: DatagramPeerFlow, payload: Buffer): void {
    if (this.#sides.get(flow.opener)?.datagrams.get(flow.tag) !== flow) return;
    const counters = this.deps.counters;
    if (!flow.opener.sendTagged(flow.tag, payload, flow.fair)) {
      counters.peerDatagramsDropped++;
      return;
    }
    counters.peerDatagramsToOpener++;
    counters.peerBytesToOpener += payload.length;
    this.#offloads.step(flow, 1);
  }

  failed(flow: DatagramPeerFlow): void {
    this.#endDatagramFlow(flow);
  }

  // ---- messages ----

  #offer(link: RelayedLink, m: Offer): void {
    const side = this.#side(link);
    if (side.offers.set(m)) this.#revoke(side);
  }

  #signal(x: RelayedLink, m: Signal): void {
    const counters = this.deps.counters;
    const from = this.#side(x);
    const refuse = (code: RefusalCode) => {
      bump(counters.signalsRefused, code);
      x.send({ type: 'signal-error', peer: m.peer, code });
    };
    if (!from.signals.take()) return refuse('rate-limited');
    if (!this.deps.known(m.peer)) return refuse('unknown-peer');
    const y = this.deps.link(m.peer);
    const fleet = this.deps.fleet?.();
    // Not here: the fleet relays it to the peer's gateway, whose side of the rule applies there.
    if (!y?.reachable && fleet) return fleet.signal(x, m.peer, Buffer.from(m.payload), from.offers.names(m.peer));
    if (!y?.reachable) return refuse('peer-offline');
    if (!allowed(from, this.#side(y))) return refuse('not-allowed');
    // Decoded buffers are views of the reader's input: copy before it moves on.
    y.send({ type: 'signal', peer: x.name, payload: Buffer.from(m.payload) });
    counters.signalsForwarded++;
  }

  #peerOpen(x: RelayedLink, m: PeerOpen): void {
    const side = this.#side(x);
    const refuse = (code: RefusalCode, message: string) => {
      bump(this.deps.counters.peerFlows[m.transport], code);
      x.send({ type: 'peer-open-error', tag: m.tag, code, message });
    };
    if (m.transport === 'udp' ? m.tag < PEER_TAG_BIT || side.datagrams.has(m.tag) : m.tag % 2 !== 1 || side.pending.has(m.tag)) {
      return refuse('invalid-request', m.transport === 'udp' ? 'a UDP peer tag must have the top bit set and be unused' : 'a TCP peer tag must be the odd id of a new stream');
    }
    if (!this.deps.known(m.peer)) return refuse('unknown-peer', `no agent is called "${m.peer}"`);
    const y = this.deps.link(m.peer);
    const fleet = this.deps.fleet?.();
    if (!y?.reachable && fleet && m.transport === 'udp') {
      if (!side.opens.take()) return refuse('rate-limited', `at most ${PEER_OPEN_RATE.perSecond} peer flows opened per second (burst ${PEER_OPEN_RATE.burst})`);
      return fleet.open(x, m.peer, m.service, m.tag, datagramAddress(x));
    }
    if (!y?.reachable) return refuse('peer-offline', `agent "${m.peer}" is not connected`);
    // Not-allowed whether or not the service exists, so an opener learns nothing about it.
    const offer = this.#side(y).offers.find(m.service, m.transport, x.name);
    if (!offer) return refuse('not-allowed', `agent "${m.peer}" does not offer ${m.transport} service "${m.service}" to "${x.name}"`);
    if (side.flows >= this.deps.maxFlowsPerAgent) return refuse('rate-limited', `at most ${this.deps.maxFlowsPerAgent} peer flows per agent`);
    if (!side.opens.take()) return refuse('rate-limited', `at most ${PEER_OPEN_RATE.perSecond} peer flows opened per second (burst ${PEER_OPEN_RATE.burst})`);
    if (m.transport === 'tcp') {
      const timer = this.deps.clock.setTimeout(() => side.pending.delete(m.tag), PENDING_STREAM_MS);
      side.pending.set(m.tag, { target: y, serviceId: offer.serviceId, timer });
      return;
    }
    const flow = new DatagramPeerFlow(x, m.tag, y, offer.serviceId, this);
    flow.clientPort = side.allocatePort();
    // Never re-tagged: the tag is named to Y (PEER_FLOW) and to X's direct path; the flow ends instead.
    const connectee = y.openDatagram(offer.serviceId, { ...datagramAddress(x), port: flow.clientPort }, flow, false);
    flow.channel = connectee;
    side.datagrams.set(m.tag, flow);
    bump(this.deps.counters.peerFlows.udp, 'ok');
    // The target learns first whose flow its connectee tag is, so it can take direct datagrams for
    // it from that peer only; then the opener learns the tag for its direct path.
    y.send({ type: 'peer-flow', tag: connectee.tag, origin: { serviceId: offer.serviceId, client: connectee.client }, peer: x.name });
    x.send({ type: 'peer-open-ok', tag: m.tag, peerTag: connectee.tag });
  }

  // ---- flows ----

  /**
   * Ends the flows into `target` its offers no longer grant (all of them when `all`): UDP flows
   * are closed toward their opener with DATAGRAM_CLOSE, relayed streams are reset, pending TCP
   * opens are forgotten (their STREAM_OPEN is then refused).
   */
  #revoke(target: PeerSide, all = false): void {
    const keep = (f: Pick<PeerFlow, 'serviceId' | 'transport' | 'opener'>) => !all && target.offers.grants(f.serviceId, f.transport, f.opener.name);
    for (const side of [target, ...this.#sides.values()]) {
      for (const f of [...side.datagrams.values()]) if (f.target === target.link && !keep(f)) this.#endDatagramFlow(f);
      for (const f of [...side.streams]) if (f.target === target.link && !keep(f)) f.destroy();
      for (const [id, p] of [...side.pending]) {
        if (p.target !== target.link || keep({ serviceId: p.serviceId, transport: 'tcp', opener: side.link })) continue;
        p.timer.cancel();
        side.pending.delete(id);
      }
    }
  }

  /** Forgets a UDP flow, closes its connectee and tells the opener with DATAGRAM_CLOSE. */
  #endDatagramFlow(flow: DatagramPeerFlow): void {
    const side = this.#sides.get(flow.opener);
    if (side?.datagrams.get(flow.tag) !== flow) return;
    side.datagrams.delete(flow.tag);
    side.releasePort(flow.clientPort);
    this.#forget(flow);
    flow.opener.send({ type: 'datagram-close', tag: flow.tag });
  }

  /** A UDP flow ends: its batch entries (last counts folded in), then its connectee. */
  #forget(flow: DatagramPeerFlow): void {
    flow.closed = true;
    this.#offloads.remove(flow);
    flow.channel?.close();
  }

  #side(link: RelayedLink): PeerSide {
    let side = this.#sides.get(link);
    if (!side) {
      side = new PeerSide(link, this.deps.clock);
      if (link.state !== 'closed') this.#sides.set(link, side);
    }
    return side;
  }
}

/** The client address the target sees for a UDP flow: the opener's UDP address when known, else its control connection's (the port is the flow's). */
function datagramAddress(x: RelayedLink): Endpoint {
  const udp = x.udpAddress;
  if (!udp) return x.remote;
  return { address: udp.address, port: udp.port, family: canonicalIp(udp.address)?.family ?? 4 };
}

function bump(table: Partial<Record<string, number>>, key: string): void {
  table[key] = (table[key] ?? 0) + 1;
}
