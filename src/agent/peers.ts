import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { AgentConfig } from '../config/expose-config.js';
import type { IceTiming } from '../ice/agent.js';
import type { IceSocket } from '../ice/bases.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import { PEER_TAG_BIT, type ControlMessage, type DatagramOrigin, type OpenerOptions, type SealerOptions } from '../protocol/tunnel/index.js';
import type { SocketOpener, SocketSealer } from '../datapath/socket-keys.js';
import type { DatagramChannel, DatagramReceiver, DialOptions } from '../upstream/dialer.js';
import type { PeerFlows, PeerTarget } from '../upstream/peer/peer-dialer.js';
import { PeerFlow, type RelayPath } from './peer-flow.js';
import { ExposedPeerOffloads } from './peer-offload.js';
import type { SessionBudget, TunnelEnd } from '../datapath/offload.js';
import { PeerLink } from './peer-link.js';
import { decodePeerSignal } from './peer-signal.js';

/** What the manager needs of the agent's gateway connection while it is up. */
export interface PeerControl {
  send(m: ControlMessage): void;
  /** Opens an agent-side stream; `beforeOpen` runs with its id before STREAM_OPEN is sent. */
  openStream(opts: DialOptions, beforeOpen: (streamId: number) => void): Promise<Duplex>;
}

/** The agent's gateway datagram path, as the peers use it. */
export interface PeerDatagramPath extends RelayPath {
  sendClose(tag: number): void;
  iceSocket(): IceSocket | undefined;
  gatewayStun(): StunPeer | undefined;
  /** The opener of a direct path's key, on the gateway socket's datapath. */
  opener?(opts: OpenerOptions): SocketOpener;
  /** The sealer of a peer's direct-path key, sending from the gateway socket. */
  sealer?(opts: SealerOptions): SocketSealer;
}

export interface PeersDeps {
  readonly clock: Clock;
  readonly path: PeerDatagramPath;
  /** A direct datagram for an exposed service's connectee tag (LocalServices.onGatewayDatagram). */
  readonly deliverExposed: (tag: number, origin: DatagramOrigin | undefined, payload: Buffer) => void;
  readonly changed?: (link: PeerLink) => void;
  readonly iceTiming?: Partial<IceTiming>;
}

/**
 * Every peer link of this agent and the flows over them (docs/connect.md). The connecting side
 * creates a link on a flow's first datagram (lazy) and offers; the exposing side creates one when
 * an offer arrives from an agent it offers a service to. Links go idle after `peerIdleTimeout`
 * without traffic.
 */
export class Peers implements PeerFlows {
  readonly links = new Map<string, PeerLink>();
  readonly #flows = new Map<number, PeerFlow>();
  /** TCP PEER_OPENs by stream id until the stream opens or fails: the target, then the gateway's refusal if one came. */
  readonly #openingStreams = new Map<number, PeerTarget | SluiceError>();
  readonly #byPeerTag = new Map<PeerLink, Map<number, PeerFlow>>();
  /** Exposed-service tags last heard over a direct path, and from which link: replies go back the same way. */
  readonly #directTags = new Map<number, PeerLink>();
  /** Exposed peer-flow sessions forwarded in the native batch, by tag. */
  readonly #exposedOffloads = new ExposedPeerOffloads();
  /** Connectee tags of our exposed services that are peers' flows (PEER_FLOW): who, and the gateway's origin. */
  readonly #exposedFlows = new Map<number, { readonly peer: string; readonly origin: DatagramOrigin }>();
  /** `directRefused`: direct datagrams for a tag that is not the sending peer's flow. */
  readonly counters = { signalsIgnored: 0, signalErrors: 0, flowsOpened: 0, flowsRefused: 0, directRefused: 0 };
  /** The flow of each connect session (the session is the route's FlowRef): records and metrics ask. */
  readonly #bySession = new WeakMap<object, PeerFlow>();
  #control: PeerControl | undefined;
  /** Flow tags closed while the control channel was down: DATAGRAM_CLOSE goes out on the next attach. */
  readonly #closedWhileDown: number[] = [];
  #nextTag = 1;
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
        const owner = this.#exposedFlows.get(tag);
        if (owner?.peer !== link.peer) {
          this.counters.directRefused++;
          return;
        }
        if (this.#directTags.get(tag) !== link) {
          this.#directTags.set(tag, link);
          this.#exposedOffloads.changed(tag);
        }
        d.deliverExposed(tag, owner.origin, payload);
      },
      deliverFlow: (link, peerTag, payload) => this.#byPeerTag.get(link)?.get(peerTag)?.deliver(payload),
      changed: (link) => {
        // The path changed: flows forwarded in the batch the old way go back through JavaScript once.
        for (const f of this.#byPeerTag.get(link)?.values() ?? []) f.offloads.closeAll();
        if (link.directUsable) for (const f of this.#byPeerTag.get(link)?.values() ?? []) f.flush();
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
    for (const tag of this.#closedWhileDown.splice(0)) control.send({ type: 'datagram-close', tag });
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
        this.#exposedFlows.set(m.tag, { peer: m.peer, origin: m.origin });
        return true;
      case 'peer-open-ok': {
        const f = this.#flows.get(m.tag);
        if (!f) return true;
        f.state = 'ok';
        f.offloads.closeAll();
        if (f.peerTag !== 0) this.#byPeerTag.get(f.link)?.delete(f.peerTag);
        f.peerTag = m.peerTag;
        this.#peerTags(f.link).set(m.peerTag, f);
        f.link.relayUp();
        f.flush();
        return true;
      }
      case 'peer-open-error': {
        const f = this.#flows.get(m.tag);
        // A TCP PEER_OPEN names its stream id: the stream's reset follows, and openStream reports this.
        const opening = f ? undefined : this.#openingStreams.get(m.tag);
        const target = f?.target ?? (opening instanceof SluiceError ? undefined : opening);
        if (!target) return true;
        this.counters.flowsRefused++;
        (f?.link ?? this.links.get(target.peer))?.signalRefused(m.code);
        const err = peerRefusal(target, m.code, m.message);
        if (f) this.#fail(f, err);
        else this.#openingStreams.set(m.tag, err);
        return true;
      }
      case 'datagram':
        if (!(m.tag & PEER_TAG_BIT)) return false;
        this.onRelayDatagram(m.tag, m.payload);
        return true;
      case 'datagram-close': {
        if (!(m.tag & PEER_TAG_BIT)) {
          this.#forgetExposed(m.tag);
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
    if (this.#directTags.size !== 0 && this.#directTags.delete(tag)) this.#exposedOffloads.changed(tag);
  }

  /** A reply of an exposed service: true when it went over the direct path it came from. */
  sendExposed(tag: number, payload: Buffer): boolean {
    const link = this.#directTags.get(tag);
    return link !== undefined && link.sendDirect((tag | PEER_TAG_BIT) >>> 0, payload);
  }

  /**
   * The tunnel side of exposed tag `tag` for the native batch: a peer's flow over the path its
   * datagrams last came by (`relay` makes the relay's end); any other tag, the relay's end as is.
   */
  offloadExposed(tag: number, budget: SessionBudget, relay: () => TunnelEnd | null): TunnelEnd | null {
    if (!this.#exposedFlows.has(tag)) return relay();
    return this.#exposedOffloads.end(tag, this.#directTags.get(tag), budget, relay, () => this.#directTags.get(tag));
  }

  /** True when replies on `tag` go over a direct peer path. */
  carriesExposed(tag: number): boolean {
    return this.#directTags.has(tag);
  }

  /** The exposed service dropped `tag`. */
  exposedClosed(tag: number): void {
    this.#forgetExposed(tag);
  }

  /** The gateway did not resume the session: every connectee tag is gone. */
  resetExposed(): void {
    this.#directTags.clear();
    this.#exposedFlows.clear();
    this.#exposedOffloads.clear();
  }

  #forgetExposed(tag: number): void {
    this.#directTags.delete(tag);
    this.#exposedFlows.delete(tag);
    this.#exposedOffloads.changed(tag);
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
    const f = new PeerFlow(this.deps.path, (flow) => this.#close(flow), link, target, receiver, { address: target.peer, port: 0, family: 4 } as Endpoint);
    this.#bySession.set(receiver, f);
    this.counters.flowsOpened++;
    link.connect();
    this.#open(f);
    return f;
  }

  async openStream(target: PeerTarget, opts: DialOptions): Promise<{ stream: Duplex; remote: Endpoint }> {
    const control = this.#control;
    if (!control) throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `not connected to the gateway, so ${target.peer} cannot be reached`);
    const link = this.link(target.peer);
    link.touch();
    let id = 0;
    try {
      const stream = await control.openStream(opts, (streamId) => {
        id = streamId;
        this.#openingStreams.set(id, target);
        control.send({ type: 'peer-open', tag: id, transport: 'tcp', peer: target.peer, service: target.service });
      });
      link.relayUp();
      return { stream, remote: { address: target.peer, port: 0, family: 4 } };
    } catch (err) {
      // The gateway's refusal (PEER_OPEN_ERROR, before the reset) says why better than the reset does.
      const refusal = this.#openingStreams.get(id);
      throw refusal instanceof SluiceError ? refusal : err;
    } finally {
      this.#openingStreams.delete(id);
    }
  }

  close(): void {
    this.#sweep.cancel();
    for (const f of [...this.#flows.values()]) this.#close(f);
    for (const l of this.links.values()) l.idle();
  }

  // ---- flows ----

  #open(f: PeerFlow): void {
    const control = this.#control;
    if (!control || f.state === 'closed') return;
    f.offloads.closeAll();
    if (f.tag !== 0) {
      this.#flows.delete(f.tag);
      control.send({ type: 'datagram-close', tag: f.tag });
    }
    f.tag = this.#allocateTag();
    this.#flows.set(f.tag, f);
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
    if (this.#flows.get(f.tag) === f) this.#flows.delete(f.tag);
    if (f.peerTag !== 0 && this.#byPeerTag.get(f.link)?.get(f.peerTag) === f) this.#byPeerTag.get(f.link)!.delete(f.peerTag);
    if (!wasOpen || f.tag === 0) return;
    // A flow the gateway may still hold (a resumed session keeps it): tell it, now or once back.
    if (this.#control) this.#control.send({ type: 'datagram-close', tag: f.tag });
    else if (this.#closedWhileDown.length < 1024) this.#closedWhileDown.push(f.tag);
  }

  #peerTags(link: PeerLink): Map<number, PeerFlow> {
    let m = this.#byPeerTag.get(link);
    if (!m) this.#byPeerTag.set(link, (m = new Map()));
    return m;
  }

  #allocateTag(): number {
    for (;;) {
      const tag = (PEER_TAG_BIT | this.#nextTag) >>> 0;
      this.#nextTag = this.#nextTag >= 0x7fff_ffff ? 1 : this.#nextTag + 1;
      if (!this.#flows.has(tag)) return tag;
    }
  }

  #idleSweep(): void {
    const now = this.deps.clock.now();
    for (const l of this.links.values()) {
      if (l.state !== 'idle' && now - l.lastActivity >= this.config.peerIdleTimeoutMs) {
        for (const [tag, link] of this.#directTags) {
          if (link !== l) continue;
          this.#directTags.delete(tag);
          this.#exposedOffloads.changed(tag);
        }
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
