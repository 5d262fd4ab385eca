import type { Endpoint } from '../core/address.js';
import { encodeOriginBlock } from '../protocol/tunnel/index.js';
import type { DatagramChannel, DatagramReceiver } from '../upstream/dialer.js';
import { OffloadGroup, type TunnelEnd } from '../datapath/offload.js';

/** What a connectee needs from the agent link it rides (AgentLink implements it). */
export interface ConnecteeUplink {
  /** The agent's control connection address. */
  readonly remote: Endpoint;
  /** One datagram toward the agent on the connectee's tag (with its origin until answered). */
  sendData(c: Connectee, payload: Buffer): void;
  /** The public session ended: the link forgets the tag and tells the agent. */
  dropConnectee(c: Connectee): void;
  /** The route of the agent's public listener `serviceId`, where budget drops are reported. */
  serviceRoute(serviceId: number): string | undefined;
  /** The connectee's side for the native batch (datapath/offload.ts), or null while it needs JavaScript. */
  offloadEnd?(c: OffloadedTag): TunnelEnd | null;
}

/** What a tunnel side for the batch needs of a tag: a connectee's, or a relayed peer flow's opener tag (peer-relay-offload.ts). */
export type OffloadedTag = Pick<Connectee, 'closed' | 'answered' | 'tag' | 'fair' | 'offloads'>;
import { FairSlot, slotDrops } from '../upstream/agent/send-budget.js';
import type { DropReason } from '../core/reasons.js';

const ANSWERED = 1;
const CLOSED = 2;
const RETAG = 4;
/** The service id (u16 on the wire) is kept above the three flags, in the same small integer. */
const SERVICE_SHIFT = 3;

/** What few connectees hold, or hold for a short while: made at its first use, let go when empty. */
class ConnecteeExtras {
  /** The origin block, encoded while needed (until answered). */
  origin: Buffer | null = null;
  offloads: OffloadGroup | null = null;
  constructor(readonly port: number | undefined) {}
}

/**
 * One public UDP session's path to the agent: a connectee tag (docs/tunnel-protocol.md §6). The
 * origin block rides every datagram until the agent has answered on the tag. An idle answered
 * session holds its flags in one small integer and no buffer or group of its own.
 */
export class Connectee extends FairSlot implements DatagramChannel {
  /** ANSWERED, CLOSED, RETAG and the service id: one field for all (every exposed session has a connectee). */
  #flags: number;
  /** The public port (range services), the origin block until answered, the batch's group: null when none. */
  #x: ConnecteeExtras | null;

  /** Its session forwarded in the native batch: closed when its tag changes (made on first use). */
  get offloads(): OffloadGroup {
    const x = (this.#x ??= new ConnecteeExtras(undefined));
    return (x.offloads ??= new OffloadGroup());
  }

  /** Closes what the native batch forwards for it (its tag changed). */
  closeOffloads(): void {
    this.#x?.offloads?.closeAll();
  }

  /** Closed: it sends nothing more, and the link has forgotten (or is forgetting) its tag. */
  get closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  set closed(v: boolean) {
    this.#flags = v ? this.#flags | CLOSED : this.#flags & ~CLOSED;
  }

  /**
   * When the agent drops its session (DATAGRAM_CLOSE), a public client's connectee gets a new
   * tag for its next datagram; one whose tag others hold (a peer flow: PEER_FLOW, the direct
   * path) ends instead, and its receiver hears onUpstreamError.
   */
  get retag(): boolean {
    return (this.#flags & RETAG) !== 0;
  }

  /** The agent's id of the service (its public listener) this session is for. */
  get serviceId(): number {
    return this.#flags >>> SERVICE_SHIFT;
  }

  /** For a range service: the public port the client sent to, told to the agent in the origin. */
  get port(): number | undefined {
    return this.#x === null ? undefined : this.#x.port;
  }
  /** The public listener's route, where its budget drops are reported (read only on a drop). */
  routeName(): string | undefined {
    return this.link.serviceRoute(this.serviceId);
  }

  /** The agent has answered on the current tag: the origin block no longer rides its datagrams. */
  get answered(): boolean {
    return (this.#flags & ANSWERED) !== 0;
  }

  set answered(v: boolean) {
    this.#flags = v ? this.#flags | ANSWERED : this.#flags & ~ANSWERED;
    const x = this.#x;
    if (!v || x === null) return;
    x.origin = null;
    if (x.port === undefined && x.offloads === null) this.#x = null;
  }

  /** The origin block (docs/tunnel-protocol.md §6): who the client is, for the agent. */
  get originBlock(): Buffer {
    const x = (this.#x ??= new ConnecteeExtras(undefined));
    const port = x.port;
    return (x.origin ??= encodeOriginBlock(port === undefined ? { serviceId: this.serviceId, client: this.client } : { serviceId: this.serviceId, client: this.client, port }));
  }

  constructor(
    private readonly link: ConnecteeUplink,
    public tag: number,
    serviceId: number,
    readonly client: Endpoint,
    readonly receiver: DatagramReceiver,
    retag = true,
    port?: number,
  ) {
    super();
    this.#flags = (serviceId << SERVICE_SHIFT) | (retag ? RETAG : 0);
    this.#x = port === undefined ? null : new ConnecteeExtras(port);
  }

  /** This session's place in the agent's send budget: the connectee itself (one object per session, not two). */
  get fair(): FairSlot {
    return this;
  }

  get remote(): Endpoint {
    return this.link.remote;
  }

  send(buf: Buffer, prefix: Buffer | null): void {
    if (this.closed) return;
    this.link.sendData(this, prefix === null ? buf : Buffer.concat([prefix, buf]));
  }

  drops(): Partial<Record<DropReason, number>> | undefined {
    return slotDrops(this.fair);
  }

  offloadEnd(): TunnelEnd | null {
    return this.closed ? null : (this.link.offloadEnd?.(this) ?? null);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.link.dropConnectee(this);
  }
}
