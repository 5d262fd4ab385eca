import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/address.js';
import type { Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { AgentConfig } from '../config/expose-config.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import { PEER_TAG_BIT, type ControlMessage, type OpenerOptions, type SealerOptions } from '../protocol/tunnel/index.js';
import type { DatagramChannel, DatagramReceiver, DialOptions } from '../upstream/dialer.js';
import type { PeerFlows, PeerTarget } from '../upstream/peer/peer-dialer.js';
import { PeerFlow } from './peer-flow.js';
import { ExposedPeerTags } from './exposed-peer-tags.js';
import { PeerFlowTable } from './peer-flow-table.js';
import { PeerStreamOpens } from './peer-streams.js';
import type { PeerControl, PeersDeps } from './peers-deps.js';
import type { SessionBudget, TunnelEnd } from '../datapath/offload.js';
import { PeerLink } from './peer-link.js';
import { SendBudget } from '../upstream/agent/send-budget.js';
import { decodePeerSignal } from './peer-signal.js';

export type { PeerControl, PeerDatagramPath, PeersDeps } from './peers-deps.js';

/**
 * Every peer link of this agent and the flows over them (docs/connect.md). The connecting side
 * creates a link on a flow's first datagram (lazy) and offers; the exposing side creates one when
 * an offer arrives from an agent it offers a service to. Links go idle after `peerIdleTimeout`
 * without traffic.
 */
export class Peers implements PeerFlows {
  readonly links = new Map<string, PeerLink>();
  /** Our flows toward peers' services (the connecting side). */
  readonly #flows = new PeerFlowTable();
  /** TCP PEER_OPENs by stream id until the stream opens or fails. */
  readonly #streams = new PeerStreamOpens();
  /** Peers' flows to our exposed services (the exposing side), and the way their replies go. */
  readonly #exposed = new ExposedPeerTags();
  /** `directRefused`: direct datagrams for a tag that is not the sending peer's flow. */
  readonly counters = { signalsIgnored: 0, signalErrors: 0, flowsOpened: 0, flowsRefused: 0, directRefused: 0 };
  /** The flow of each connect session (the session is the route's FlowRef): records and metrics ask. */
  readonly #bySession = new WeakMap<object, PeerFlow>();
  /**
   * The send budget of our flows toward each peer (`agent.datagramBudget`, per link: docs/connect.md,
   * "A flood through a connect listener"). Made with the link's first flow, kept as long as the link.
   */
  readonly #budgets = new Map<string, SendBudget>();
  #control: PeerControl | undefined;
  readonly #sweep: Timer;

  constructor(
    private readonly config: AgentConfig,
    private readonly deps: PeersDeps,
  ) {
    this.#sweep = deps.clock.setInterval(() => this.#idleSweep(), Math.max(250, Math.min(5000, config.peerIdleTimeoutMs / 4)));
  }

  get flows(): readonly PeerFlow[] {
    return [...this.#flows.values()];
  }

  /** The peer flow behind a connect session (its DatagramReceiver / FlowRef), while it lives. */
  flowOf(session: object): PeerFlow | undefined {
    return this.#bySession.get(session);
  }

  link(peer: string): PeerLink {
    let l = this.links.get(peer);
    if (l) return l;
    const d = this.deps;
    l = new PeerLink({
      self: this.config.name,
      peer,
      clock: d.clock,
      stunServers: () => {
        const gw = d.path.gatewayStun();
        return [...(gw ? [gw] : []), ...this.config.stunServers.map((s) => ({ address: s.host, port: s.port }))];
      },
      turnServers: this.config.turnServers.map((t) => ({ server: { address: t.server.host, port: t.server.port }, username: t.username, password: t.password })),
      candidateClasses: this.config.peerCandidates,
      icePolicy: this.config.icePolicy,
      directRetryMs: this.config.directRetryMs,
      iceTiming: d.iceTiming,
      socket: () => d.path.iceSocket(),
      ...(d.path.opener ? { opener: (opts: OpenerOptions) => d.path.opener!(opts) } : {}),
      ...(d.path.sealer ? { sealer: (opts: SealerOptions) => d.path.sealer!(opts) } : {}),
      signal: (payload) => {
        if (!this.#control) return false;
        this.#control.send({ type: 'signal', peer, payload });
        return true;
      },
      deliverExposed: (link, tag, payload) => {
        // Only the tags the gateway named as this peer's flows (PEER_FLOW), with the gateway's origin.
        const origin = this.#exposed.arrivedDirect(link, tag);
        if (origin) d.deliverExposed(tag, origin, payload);
        else this.counters.directRefused++;
      },
      deliverFlow: (link, peerTag, payload) => this.#flows.byPeerTag(link, peerTag)?.deliver(payload),
      changed: (link) => {
        // The path changed: flows forwarded in the batch the old way go back through JavaScript once.
        for (const f of this.#flows.ofLink(link)) f.offloads.closeAll();
        if (link.directUsable) for (const f of this.#flows.ofLink(link)) f.flush();
        d.changed?.(link);
      },
    });
    l.wantDirect = this.#wantsDirect(peer);
    this.links.set(peer, l);
    return l;
  }

  // ---- the gateway connection ----

  /** A control connection is up: (re)open every flow, start offers that waited for the socket. */
  attach(control: PeerControl): void {
    this.#control = control;
    for (const tag of this.#flows.takeClosed()) control.send({ type: 'datagram-close', tag });
    // A snapshot: #open re-keys each flow under a new tag.
    for (const f of [...this.#flows.values()]) this.#open(f);
    for (const l of this.links.values()) if (l.state !== 'idle' && l.wantDirect) l.connect();
  }

  detach(): void {
    this.#control = undefined;
    for (const f of this.#flows.values()) {
      if (f.state !== 'closed') f.state = 'pending';
      f.offloads.closeAll();
    }
  }

  /** Control messages for peers; false for the rest. */
  handle(m: ControlMessage): boolean {
    switch (m.type) {
      case 'signal': {
        const s = decodePeerSignal(m.payload);
        const known = this.links.get(m.peer) ?? (this.#offersTo(m.peer) || this.#connectsTo(m.peer) ? this.link(m.peer) : undefined);
        if (typeof s === 'string' || !known) {
          this.counters.signalsIgnored++;
          return true;
        }
        known.onSignal(s);
        return true;
      }
      case 'signal-error':
        this.counters.signalErrors++;
        this.links.get(m.peer)?.signalRefused(m.code);
        return true;
      case 'peer-flow':
        this.#exposed.named(m.tag, m.peer, m.origin);
        return true;
      case 'peer-open-ok': {
        const f = this.#flows.get(m.tag);
        if (!f) return true;
        f.state = 'ok';
        f.offloads.closeAll();
        this.#flows.setPeerTag(f, m.peerTag);
        f.link.relayUp();
        f.flush();
        return true;
      }
      case 'peer-open-error': {
        const f = this.#flows.get(m.tag);
        // A TCP PEER_OPEN names its stream id: the stream's reset follows, and openStream reports this.
        const target = f?.target ?? this.#streams.target(m.tag);
        if (!target) return true;
        this.counters.flowsRefused++;
        (f?.link ?? this.links.get(target.peer))?.signalRefused(m.code);
        const err = peerRefusal(target, m.code, m.message);
        if (f) this.#fail(f, err);
        else this.#streams.refused(m.tag, err);
        return true;
      }
      case 'datagram':
        if (!(m.tag & PEER_TAG_BIT)) return false;
        this.onRelayDatagram(m.tag, m.payload);
        return true;
      case 'datagram-close': {
        if (!(m.tag & PEER_TAG_BIT)) {
          this.#exposed.forget(m.tag);
          return false;
        }
        const f = this.#flows.get(m.tag);
        if (f) this.#fail(f, `the path to ${f.target.peer}/${f.target.service} was closed`);
        return true;
      }
      default:
        return false;
    }
  }

  /** A datagram of a flow that came through the gateway. */
  onRelayDatagram(tag: number, payload: Buffer): void {
    const f = this.#flows.get(tag);
    if (f) f.deliver(payload);
    else this.deps.path.sendClose(tag);
  }

  /** An exposed-service datagram came through the gateway: its replies go back that way. */
  relayArrived(tag: number): void {
    this.#exposed.arrivedRelayed(tag);
  }

  /** A reply of an exposed service: true when it went over the direct path it came from. */
  sendExposed(tag: number, payload: Buffer): boolean {
    const link = this.#exposed.directLink(tag);
    return link !== undefined && link.sendDirect((tag | PEER_TAG_BIT) >>> 0, payload);
  }

  /**
   * The tunnel side of exposed tag `tag` for the native batch: a peer's flow over the path its
   * datagrams last came by (`relay` makes the relay's end); any other tag, the relay's end as is.
   */
  offloadExposed(tag: number, budget: SessionBudget, relay: () => TunnelEnd | null): TunnelEnd | null {
    return this.#exposed.offloadEnd(tag, budget, relay);
  }

  /** True when replies on `tag` go over a direct peer path. */
  carriesExposed(tag: number): boolean {
    return this.#exposed.directLink(tag) !== undefined;
  }

  /** The exposed service dropped `tag`. */
  exposedClosed(tag: number): void {
    this.#exposed.forget(tag);
  }

  /** The gateway did not resume the session: every connectee tag is gone. */
  resetExposed(): void {
    this.#exposed.clear();
  }

  /** A datagram of the gateway socket that is not the gateway's: STUN and data of the peers' ICE agents. */
  ingress(buf: Buffer, from: StunPeer): boolean {
    for (const l of this.links.values()) if (l.ingress(buf, from)) return true;
    return false;
  }

  // ---- PeerFlows: the connect listeners' dialers ----

  openFlow(target: PeerTarget, receiver: DatagramReceiver): DatagramChannel {
    const link = this.link(target.peer);
    // The remote a record shows: the peer's name, as the route's upstream is `peer/service`.
    const f = new PeerFlow(this.deps.path, (flow) => this.#close(flow), link, target, receiver, { address: target.peer, port: 0, family: 4 } as Endpoint, this.budgetOf(target.peer));
    this.#bySession.set(receiver, f);
    this.counters.flowsOpened++;
    link.connect();
    this.#open(f);
    return f;
  }

  /** The send budget of our flows toward `peer` (made on first use). */
  budgetOf(peer: string): SendBudget {
    let b = this.#budgets.get(peer);
    if (!b) this.#budgets.set(peer, (b = new SendBudget(this.config.datagramBudget, this.deps.clock, this.deps.events)));
    return b;
  }

  async openStream(target: PeerTarget, opts: DialOptions): Promise<{ stream: Duplex; remote: Endpoint }> {
    const control = this.#control;
    if (!control) throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `not connected to the gateway, so ${target.peer} cannot be reached`);
    const link = this.link(target.peer);
    link.touch();
    const stream = await this.#streams.open(control, target, opts);
    link.relayUp();
    return { stream, remote: { address: target.peer, port: 0, family: 4 } };
  }

  close(): void {
    this.#sweep.cancel();
    for (const f of [...this.#flows.values()]) this.#close(f);
    for (const l of this.links.values()) l.idle();
    for (const b of this.#budgets.values()) b.close();
    this.#budgets.clear();
  }

  // ---- flows ----

  #open(f: PeerFlow): void {
    const control = this.#control;
    if (!control || f.state === 'closed') return;
    f.offloads.closeAll();
    const old = this.#flows.rekey(f);
    if (old !== 0) control.send({ type: 'datagram-close', tag: old });
    control.send({ type: 'peer-open', tag: f.tag, transport: 'udp', peer: f.target.peer, service: f.target.service });
    f.state = 'sent';
    f.flush();
  }

  #fail(f: PeerFlow, err: string | SluiceError): void {
    const receiver = f.receiver;
    this.#close(f);
    receiver.onUpstreamError(typeof err === 'string' ? new SluiceError('SLUICE_ERR_DIAL_FAILED', err) : err);
  }

  #close(f: PeerFlow): void {
    if (f.state === 'closed') return;
    const wasOpen = f.state !== 'pending';
    f.state = 'closed';
    f.offloads.closeAll();
    f.queue.length = 0;
    this.#flows.remove(f);
    if (!wasOpen || f.tag === 0) return;
    // A flow the gateway may still hold (a resumed session keeps it): tell it, now or once back.
    if (this.#control) this.#control.send({ type: 'datagram-close', tag: f.tag });
    else this.#flows.closeLater(f.tag);
  }

  #idleSweep(): void {
    const now = this.deps.clock.now();
    for (const l of this.links.values()) {
      if (l.state !== 'idle' && now - l.lastActivity >= this.config.peerIdleTimeoutMs) {
        this.#exposed.linkIdle(l);
        l.idle();
      }
    }
  }

  #offersTo(peer: string): boolean {
    return this.config.expose.some((e) => e.peers.includes(peer));
  }

  #connectsTo(peer: string): boolean {
    return this.config.connect.some((c) => c.peer === peer);
  }

  /** A link runs ICE unless every connect entry toward its peer pins the relay (the exposing side follows offers). */
  #wantsDirect(peer: string): boolean {
    const mine = this.config.connect.filter((c) => c.peer === peer);
    return mine.length === 0 || mine.some((c) => c.path !== 'relay');
  }
}

/** The gateway refused a PEER_OPEN: peer-offline gets its own code (the `peer-offline` end reason), the rest fail the dial. */
function peerRefusal(target: PeerTarget, code: string, message: string): SluiceError {
  if (code === 'peer-offline') return new SluiceError('SLUICE_ERR_PEER_OFFLINE', `${target.peer} is not connected to the gateway (peer-offline), so ${target.service} cannot be reached`);
  return new SluiceError('SLUICE_ERR_DIAL_FAILED', `${target.peer} refused ${target.service}: ${code}: ${message}`);
}
