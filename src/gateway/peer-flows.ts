import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/address.js';
import type { ControlMessage, ServiceTransport } from '../protocol/tunnel/index.js';
import { StreamResetError, type TunnelStream } from '../upstream/agent/tunnel-stream.js';
import type { DatagramReceiver, DialOptions } from '../upstream/dialer.js';
import type { AgentLinkState } from './agent-link-state.js';
import { FairSlot } from '../upstream/agent/send-budget.js';
import type { Connectee, OffloadedTag } from './connectee.js';
import { OffloadGroup, type TunnelEnd } from '../datapath/offload.js';
import type { RelayOffload } from '../datapath/relay-offload.js';

/**
 * An agent link as the peer relay and its flows use it (AgentLink implements it): its identity
 * and addresses, control messages and peer-tagged datagrams toward the agent, and the two ways
 * of reaching one of its services.
 */
export interface RelayedLink {
  readonly name: string;
  readonly state: AgentLinkState;
  /** Attached, and the agent reads full-size frames: peers may reach it. */
  readonly reachable: boolean;
  /** The control connection's address. */
  readonly remote: Endpoint;
  /** Where the agent's authenticated datagrams come from, once known. */
  readonly udpAddress: { address: string; port: number } | undefined;
  /** One control message to the agent; false when not sent. */
  send(m: ControlMessage): boolean;
  /** One datagram of a peer flow toward the agent on `tag`; false when dropped (also by the agent's send budget, for `fair`). */
  sendTagged(tag: number, payload: Buffer, fair?: FairSlot): boolean;
  /** A connectee on the agent's service, as a public client's (never re-tagged when `retag` is false). */
  openDatagram(serviceId: number, client: Endpoint, receiver: DatagramReceiver, retag?: boolean): Connectee;
  /** A tunnel stream to the agent's service; rejects when the agent is not connected or refuses. */
  openStream(serviceId: number, client: Endpoint, server: Endpoint, opts: DialOptions): Promise<Duplex>;
  /** The tunnel side of `t` (a peer tag of this agent) for the native batch, or null while it needs JavaScript. */
  offloadEnd?(t: OffloadedTag): TunnelEnd | null;
}

/** What a relayed flow is: who opened it, on which tag, to which service of which agent. */
export interface PeerFlow {
  readonly transport: ServiceTransport;
  /** The agent that sent PEER_OPEN. */
  readonly opener: RelayedLink;
  /** UDP: the opener's peer tag (top bit set). TCP: the opener's odd stream id. */
  readonly tag: number;
  /** The agent whose offered service the flow reaches. */
  readonly target: RelayedLink;
  /** The target's service id (from its OFFER). */
  readonly serviceId: number;
}

/** Where a UDP peer flow reports what came back from the target. */
export interface DatagramFlowSink {
  /** One datagram from the target's service, for the opener. */
  toOpener(flow: DatagramPeerFlow, payload: Buffer): void;
  /** The target's side of the flow is gone (unpublished, link closed). */
  failed(flow: DatagramPeerFlow): void;
}

/**
 * A relayed UDP flow: the opener's peer tag on one side, a connectee on the target agent on the
 * other, made exactly as a public client's would be (so the target sees a DATAGRAM with an origin).
 * The relay owns it; `channel` is the connectee (its tag is the target's `peerTag` in PEER_OPEN_OK),
 * closed by whoever ends the flow.
 */
export class DatagramPeerFlow implements PeerFlow, DatagramReceiver {
  readonly transport = 'udp';
  channel: Connectee | undefined;
  /** The client port the target sees for this flow (its own per opener: PeerSide.allocatePort). */
  clientPort = 0;
  /** This flow's place in the opener's send budget (what goes back to the opener). */
  readonly fair = new FairSlot();
  /** The opener's tag as a tunnel side sees it (OffloadedTag): always answered, closed with the flow. */
  readonly answered = true;
  closed = false;
  /** Forwarded in the native batch (peer-relay-offload.ts): the entries, their counts as last folded, when it was last tried. */
  offload: RelayOffload | null = null;
  offloadSeen: number[] = [0, 0, 0, 0, 0];
  offloadTried = -1;
  /** Datagrams either way that took JavaScript (a flow is handed over after a few). */
  viaJs = 0;
  readonly offloads = new OffloadGroup();

  constructor(
    readonly opener: RelayedLink,
    readonly tag: number,
    readonly target: RelayedLink,
    readonly serviceId: number,
    private readonly sink: DatagramFlowSink,
  ) {}

  onUpstreamDatagram(buf: Buffer): void {
    this.sink.toOpener(this, buf);
  }

  onUpstreamError(): void {
    this.sink.failed(this);
  }
}

/** A relayed TCP flow: the opener's stream, and the target's once the target accepted. */
export class StreamPeerFlow implements PeerFlow {
  readonly transport = 'tcp';
  toTarget: TunnelStream | undefined;

  constructor(
    readonly opener: RelayedLink,
    readonly fromOpener: TunnelStream,
    readonly target: RelayedLink,
    readonly serviceId: number,
  ) {}

  get tag(): number {
    return this.fromOpener.id;
  }

  /**
   * Opens the stream to the target (client: the opener's control connection address; server:
   * the gateway's) and joins it to the opener's once the target accepted, after `accept` told
   * the opener. Otherwise resets the opener's stream: `refused` when the target refused, else
   * `dial-failed`. `outcome` gets ok, refused, dial-failed or cancel (the opener gave up first);
   * `done` runs once when the flow is over, with the bytes each way.
   */
  start(
    server: Endpoint,
    timeoutMs: number,
    accept: () => void,
    report: { outcome(result: 'ok' | 'refused' | 'dial-failed' | 'cancel'): void; done(toService: number, toOpener: number): void },
  ): void {
    const opener = this.fromOpener;
    const abort = new AbortController();
    opener.once('close', () => abort.abort());
    this.target.openStream(this.serviceId, this.opener.remote, server, { signal: abort.signal, timeoutMs }).then(
      (up) => {
        const target = up as TunnelStream;
        if (opener.destroyed) {
          target.destroy();
          report.outcome('cancel');
          return report.done(0, 0);
        }
        report.outcome('ok');
        this.toTarget = target;
        accept();
        joinStreams(opener, target, report.done);
      },
      (err: Error) => {
        if (opener.destroyed) report.outcome('cancel');
        else {
          const refused = err.cause instanceof StreamResetError && err.cause.resetCode === 'refused';
          report.outcome(refused ? 'refused' : 'dial-failed');
          opener.reset(refused ? 'refused' : 'dial-failed');
        }
        report.done(0, 0);
      },
    );
  }

  /** Resets both streams (`cancel`). */
  destroy(): void {
    this.fromOpener.destroy();
    this.toTarget?.destroy();
  }
}

/**
 * Joins two tunnel streams both ways. Half-close travels as half-close: one side's STREAM_END
 * ends the other's writable side, and the pair is done when both directions ended. A stream that
 * closes any other way (reset by its agent, its connection lost) destroys the other, which resets
 * it with `cancel`. `onDone` runs once, after both closed, with the bytes each way.
 */
export function joinStreams(a: TunnelStream, b: TunnelStream, onDone: (aToB: number, bToA: number) => void): void {
  let open = 2;
  const watch = (from: TunnelStream, to: TunnelStream) => {
    from.on('error', () => {});
    from.once('close', () => {
      if (!(from.readableEnded && from.writableFinished)) to.destroy();
      if (--open === 0) onDone(a.bytesRead, b.bytesRead);
    });
    from.pipe(to);
  };
  watch(a, b);
  watch(b, a);
}
