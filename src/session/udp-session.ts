import { ipv4PortKey, type Endpoint } from '../core/address.js';
import type { RouteOrigin } from '../config/types.js';
import type { DatagramChannel, DatagramReceiver } from '../upstream/dialer.js';
import type { FlowCounters, FlowRef } from '../observe/events.js';
import type { ReplyBudgetState } from '../core/reply-budget.js';
import type { BandwidthGate } from '../admission/bandwidth-limiter.js';
import type { Offload } from '../datapath/offload.js';
import { nextUdpSessionState, type UdpSessionState } from './udp-session-state.js';

export type { UdpSessionState };

/** A client's session key: an IPv4 ip:port as one number (ipv4 * 65536 + port), any other as `address|port`. */
export function clientKey(address: string, port: number): number | string {
  const k = ipv4PortKey(address, port);
  return k >= 0 ? k : `${address}|${port}`;
}

/** What a session needs from the table that owns it. */
export interface UdpSessionOwner {
  toClient(session: UdpSession, buf: Buffer): void;
  upstreamFailed(session: UdpSession, err: Error): void;
  countSendError(): void;
  /** Wall-clock ms its sessions' start times count from (UdpSession.startedWall). */
  readonly wallEpoch: number;
}


/** The states by their number in UdpSession's flags (the low two bits). */
const STATES: readonly UdpSessionState[] = ['opening', 'open', 'closed'];
const STATE_BITS = 3;
const UNANSWERED = 4;

/** What few sessions set: kept out of the session until first written. */
class UdpSessionExtras {
  wouldEndNoted = false;
  origin: RouteOrigin | undefined = undefined;
  listenPort: number | undefined = undefined;
  prefix: Buffer | null = null;
  prefixUntilReply = false;
  bwUp: BandwidthGate | null = null;
  bwDown: BandwidthGate | null = null;
  offload: Offload | null = null;
  offloadClientPlain = false;
  offloadSeen: number[] | null = null;
  offloadTried = -1;
  /** The key, where it is not the reply address's (a client named by a PROXY header). */
  key: number | string | undefined = undefined;
}

/**
 * One client ip:port on one UDP route. Plain fields, no timers and no closures of its own: the
 * table sweeps idle sessions, and the counters are bumped in place on the per-datagram path.
 */
export class UdpSession implements DatagramReceiver, FlowCounters, FlowRef, ReplyBudgetState {
  /** The state's number (STATES) and UNANSWERED, in one small integer: one field instead of two. */
  #bits = UNANSWERED;
  channel: DatagramChannel | null = null;
  /** Datagrams from the client held while the upstream channel opens; null once open. */
  queue: Buffer[] | null = [];
  /** Sweep tick of the last datagram in either direction. */
  lastTick: number;
  bytesFromClient = 0;
  packetsFromClient = 0;
  bytesToClient = 0;
  packetsToClient = 0;
  /**
   * The client side's own record of this session (the agent's entry of a gateway tag), so it finds
   * it without a lookup; null where the client side keeps none.
   */
  clientRef: object | null = null;
  /** The per-source key admission counted this session under (AdmissionLimits.keyOf). */
  source = '';
  // The route's reply budget (core/reply-budget.ts), kept here so a datagram touches one object:
  // the gateway's public routes have one by default, so these are not rare.
  budgetWindow = 0;
  budgetIn = 0;
  budgetInPrev = 0;
  budgetOut = 0;
  budgetOutPrev = 0;
  /**
   * The fields most sessions never set (UdpSessionExtras), made at their first write: an idle
   * session costs one slot for them instead of fifteen. Each setter makes it in place (`??=`): the
   * class has no private method, which would cost every instance a slot for the class's brand.
   */
  #x: UdpSessionExtras | null = null;
  /**
   * Wall-clock start, in ms after the owner's `wallEpoch`: a small integer for 12 days after the
   * table was made, where the absolute time is a double that a field boxes in 16 bytes of its own.
   */
  readonly #wallOffset: number;

  /** True until the upstream's first datagram; the table then refunds the creation tokens. */
  get unanswered(): boolean {
    return (this.#bits & UNANSWERED) !== 0;
  }
  set unanswered(v: boolean) {
    this.#bits = v ? this.#bits | UNANSWERED : this.#bits & ~UNANSWERED;
  }

  get proto(): 'udp' {
    return 'udp';
  }

  /** The upstream its channel reached (kept after the channel closed); undefined until open. */
  get upstream(): Endpoint | undefined {
    return this.channel === null ? undefined : this.channel.remote;
  }

  /** An observe-only verdict on this live session was recorded (admission/reverdict.ts). */
  get wouldEndNoted(): boolean {
    return this.#x !== null && this.#x.wouldEndNoted;
  }
  set wouldEndNoted(v: boolean) {
    if (v || this.#x !== null) (this.#x ??= new UdpSessionExtras()).wouldEndNoted = v;
  }
  /** The route's origin when it came from container labels (shared, not copied). */
  get origin(): RouteOrigin | undefined {
    return this.#x?.origin;
  }
  set origin(v: RouteOrigin | undefined) {
    if (v !== undefined || this.#x !== null) (this.#x ??= new UdpSessionExtras()).origin = v;
  }
  /** The listen port, on a route whose listen is a port range; undefined otherwise. */
  get listenPort(): number | undefined {
    return this.#x?.listenPort;
  }
  set listenPort(v: number | undefined) {
    if (v !== undefined || this.#x !== null) (this.#x ??= new UdpSessionExtras()).listenPort = v;
  }
  /** PROXY v2 header put in front of each datagram to the upstream; null when none (any more). */
  get prefix(): Buffer | null {
    return this.#x === null ? null : this.#x.prefix;
  }
  set prefix(v: Buffer | null) {
    if (v !== null || this.#x !== null) (this.#x ??= new UdpSessionExtras()).prefix = v;
  }
  /** `first` mode: the header rides every datagram only until the upstream has answered once. */
  get prefixUntilReply(): boolean {
    return this.#x !== null && this.#x.prefixUntilReply;
  }
  set prefixUntilReply(v: boolean) {
    if (v || this.#x !== null) (this.#x ??= new UdpSessionExtras()).prefixUntilReply = v;
  }
  /** Bandwidth gates of each direction (admission/bandwidth-limiter.ts); null where unlimited. */
  get bwUp(): BandwidthGate | null {
    return this.#x === null ? null : this.#x.bwUp;
  }
  set bwUp(v: BandwidthGate | null) {
    if (v !== null || this.#x !== null) (this.#x ??= new UdpSessionExtras()).bwUp = v;
  }
  get bwDown(): BandwidthGate | null {
    return this.#x === null ? null : this.#x.bwDown;
  }
  set bwDown(v: BandwidthGate | null) {
    if (v !== null || this.#x !== null) (this.#x ??= new UdpSessionExtras()).bwDown = v;
  }
  /** Its datagrams forwarded in the native batch (datapath/offload.ts), or null; the table folds its counters in. */
  get offload(): Offload | null {
    return this.#x === null ? null : this.#x.offload;
  }
  set offload(v: Offload | null) {
    if (v !== null || this.#x !== null) (this.#x ??= new UdpSessionExtras()).offload = v;
  }
  /** The client is the offload's plain side (the gateway); else its tunnel side (the agent). */
  get offloadClientPlain(): boolean {
    return this.#x !== null && this.#x.offloadClientPlain;
  }
  set offloadClientPlain(v: boolean) {
    if (v || this.#x !== null) (this.#x ??= new UdpSessionExtras()).offloadClientPlain = v;
  }
  /** The offload's counters as last folded: datagrams and bytes from and to the client (made with the offload). */
  /** Sweep tick of the last attempt to offload it (one attempt per tick; -1: none yet). */
  get offloadTried(): number {
    return this.#x === null ? -1 : this.#x.offloadTried;
  }
  set offloadTried(v: number) {
    (this.#x ??= new UdpSessionExtras()).offloadTried = v;
  }
  get offloadSeen(): number[] | null {
    return this.#x === null ? null : this.#x.offloadSeen;
  }
  set offloadSeen(v: number[] | null) {
    if (v !== null || this.#x !== null) (this.#x ??= new UdpSessionExtras()).offloadSeen = v;
  }

  constructor(
    private readonly owner: UdpSessionOwner,
    readonly id: number,
    readonly route: string,
    /** Canonical client address, for admission and records. */
    readonly client: Endpoint,
    key: number | string,
    /**
     * Where replies go, as the listener socket spells it (may be ::ffff:v4): the client itself, or
     * the trusted proxy that sent its datagrams (updated by each datagram, so a proxy may move).
     */
    public replyAddress: string,
    public replyPort: number,
    readonly startedAt: number,
    startedWall: number,
    tick: number,
  ) {
    this.lastTick = tick;
    const offset = startedWall - owner.wallEpoch;
    // `| 0` makes it a small integer to V8 too: a difference of two doubles stored as it is would
    // make the field a boxed double for every session of the table's shape.
    this.#wallOffset = offset >= -0x40000000 && offset < 0x40000000 ? offset | 0 : offset;
    if (key !== clientKey(replyAddress, replyPort)) (this.#x ??= new UdpSessionExtras()).key = key;
  }

  /** Wall-clock time it started (ms since the epoch). */
  get startedWall(): number {
    return this.owner.wallEpoch + this.#wallOffset;
  }

  /**
   * The session key: the client's ip:port (from a trusted PROXY header when there is one). Not a
   * field: it is the reply address's key unless pinned (an IPv4 key is a double, which a field
   * would box in 16 bytes of its own per session); read only when the session is added or removed.
   */
  get key(): number | string {
    const x = this.#x;
    return x !== null && x.key !== undefined ? x.key : clientKey(this.replyAddress, this.replyPort);
  }

  /** Keeps the key as it is now, whatever the reply address becomes (a session behind a PROXY sender). */
  pinKey(): void {
    if (this.#x === null || this.#x.key === undefined) (this.#x ??= new UdpSessionExtras()).key = this.key;
  }

  /** Where the session is in its life (udp-session-state.ts); changed only through `move`. */
  get state(): UdpSessionState {
    return STATES[this.#bits & STATE_BITS]!;
  }

  /** The one way the state changes; throws SLUICE_ERR_STATE for a move the table forbids. */
  move(to: UdpSessionState): void {
    const next = nextUdpSessionState(this.state, to);
    this.#bits = (this.#bits & ~STATE_BITS) | (next === 'opening' ? 0 : next === 'open' ? 1 : 2);
  }

  onUpstreamDatagram(buf: Buffer): void {
    this.owner.toClient(this, buf);
  }

  onUpstreamError(err: Error): void {
    this.owner.upstreamFailed(this, err);
  }

  onDatagramError(): void {
    this.owner.countSendError();
  }

  counters(): FlowCounters {
    return {
      bytesFromClient: this.bytesFromClient,
      packetsFromClient: this.packetsFromClient,
      bytesToClient: this.bytesToClient,
      packetsToClient: this.packetsToClient,
    };
  }
}
