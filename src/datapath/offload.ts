import { MAX_DATAGRAM_PAYLOAD_BYTES } from '../protocol/tunnel/index.js';
import type { DatagramChannel } from './datagram-channel.js';
import type { SocketOpener, SocketSealer } from './socket-keys.js';
import type { UdpSender } from './udp-datapath.js';
import { FORWARD_COUNTERS, NativeSocketOpener, NativeSocketSealer, type Engine } from './native/native-keys.js';
import type { NativeAddress } from './native/address-book.js';
import { NativeChannel, NativeListener } from './native/native-sockets.js';
import { POOL_DROP_REASONS, poolDrops, type OffloadPools } from './offload-pool.js';

/**
 * Established tunnel sessions forwarded inside the native batch (docs/datapath.md, "Established
 * sessions in the batch"). A session of an exposure has a plain side (a public client behind a
 * listener at the gateway; the connected socket to the local service at the agent) and a tunnel
 * side (its tag, sealed under the link's keys). Once TypeScript has admitted the session, it may
 * hand both sides to `offload`: two entries in the engine's forwarding table then carry the
 * session's datagrams (plain -> sealed -> tunnel, and opened -> plain) without a JavaScript call
 * each. What an entry cannot decide stays in the batch for JavaScript, as before: a datagram
 * over the size limit, from another source, with an origin block, beyond the credit the send
 * budget gave, or beyond the reply budget. Counters are read from shared memory without a call.
 */

/** The plain side: a client behind a listener, or a connected socket. */
export type PlainEnd =
  | { readonly kind: 'client'; readonly listener: UdpSender; readonly address: string; readonly port: number }
  | { readonly kind: 'channel'; readonly channel: DatagramChannel };

/** The tunnel side: keys and tag of the session, where the other end is, its send budget. */
export interface TunnelEnd {
  readonly kind: 'tunnel';
  /** Seals toward the other end; its socket is the tunnel socket (datagrams are opened on it too). */
  readonly sealer: SocketSealer;
  readonly opener: SocketOpener;
  readonly tag: number;
  /** The tag datagrams from the tunnel carry, when not `tag` (a direct peer path: the peer answers with the peer bit set). */
  readonly tagIn?: number;
  /** A byte before each tunnel datagram on the wire both ways (ICE's data prefix on a direct peer path). */
  readonly frame?: number;
  readonly peer: { readonly address: string; readonly port: number };
  /** Forward toward the plain side only datagrams from `peer` (others reach JavaScript, which may move the address). */
  readonly pinPeer: boolean;
  /** Pre-admits up to `want` datagrams toward the tunnel under its send budget; -1 when there is no budget. */
  grant(want: number): number;
  /**
   * The send budget's pools (datapath/offload-pool.ts): with one, the batch refills the seal
   * entry's credit itself, and what it forwarded is `charge`d to the budget when folded.
   */
  readonly pools?: OffloadPools;
  charge?(toTunnel: number): void;
  /** What the session has banked of its share (FairSlot.bank), carried into the pool when it joins. */
  bank?(): number;
  /** Datagrams toward the tunnel the pool dropped in the batch since the last call, by reason (stale: native/src/age.cc). */
  dropped?(agentBudget: number, sessionShare: number, stale: number): void;
  /** Counts datagrams the batch forwarded, for the tunnel's own counters. */
  forwarded(toTunnel: number, fromTunnel: number): void;
  /** False once keys, tag, peer address or mode changed since this end was given. */
  valid(): boolean;
  /** Groups the offload joins: their owner closes them at once when the tunnel side changes. */
  readonly groups?: readonly OffloadGroup[];
}

/** A session's send budget as its tunnel side passes it on (the agent's datagram path gets it from the session's table). */
export type SessionBudget = Pick<TunnelEnd, 'grant' | 'pools' | 'charge' | 'bank' | 'dropped'>;

/**
 * Offloads that one change of the tunnel side ends at once (new keys, the peer's address moved,
 * a re-tag, a fall back to TLS frames): their owner calls `closeAll`, so the batch stops
 * forwarding the old way before the next datagram, not only at the tables' next sweep.
 */
export class OffloadGroup {
  readonly #members = new Set<{ close(): void }>();

  add(o: { close(): void }): void {
    this.#members.add(o);
  }

  delete(o: { close(): void }): void {
    this.#members.delete(o);
  }

  get size(): number {
    return this.#members.size;
  }

  closeAll(): void {
    for (const o of [...this.#members]) o.close();
    this.#members.clear();
  }
}

export type OffloadEnd = PlainEnd | TunnelEnd;

/**
 * The largest number of datagrams pre-admitted at once under a send budget (a batch harvests up
 * to 128): a session beyond its credit reaches JavaScript, which drops what the budget refuses and
 * grants the next chunk, twice the last one up to this (`Offload.refill`). A new entry starts
 * with none: a burst of new sessions that send one datagram each must not each hold credit they
 * never use (it would be charged to the budget and refused to the others). Smaller chunks cost
 * more JavaScript calls at high rates; larger ones charge the budget earlier for datagrams that
 * may come later (at 100,000/s, 128 is 1.3 ms of the whole budget).
 */
export const CREDIT_CHUNK = 128;

const NO_FINAL: number[] = [];

/** Both forwarding entries of one session. `close` removes them; counters stay readable. */
export class Offload {
  readonly #e: Engine;
  /** The counters' last values, kept at `close` (none before: an idle session holds no copy). */
  #final: number[] = NO_FINAL;
  #closed = false;
  /** The seal entry draws on its send budget's pool in the batch (no credit to grant from here). */
  pooled = false;
  /** The last credit chunk: doubles on every refill (8 first), up to CREDIT_CHUNK. */
  #chunk = 4;
  /** The entries' generations at install (Engine.fwd.gens), -1 without them. */
  readonly #genTo: number;
  readonly #genFrom: number;

  constructor(
    e: Engine,
    /** The seal entry: plain side -> tunnel. */
    readonly toTunnel: number,
    /** The plain entry: tunnel -> plain side. */
    readonly fromTunnel: number,
    readonly tunnel: TunnelEnd,
  ) {
    this.#e = e;
    const gens = e.fwd!.gens;
    this.#genTo = gens === null ? -1 : gens[toTunnel]!;
    this.#genFrom = gens === null ? -1 : gens[fromTunnel]!;
  }

  #c(entry: number, i: number, at: number): number {
    return this.#closed ? this.#final[at]! : this.#e.fwd!.counters[entry * FORWARD_COUNTERS + i]!;
  }

  get datagramsToTunnel(): number {
    return this.#c(this.toTunnel, 0, 0);
  }

  get bytesToTunnel(): number {
    return this.#c(this.toTunnel, 1, 1);
  }

  get datagramsFromTunnel(): number {
    return this.#c(this.fromTunnel, 0, 2);
  }

  get bytesFromTunnel(): number {
    return this.#c(this.fromTunnel, 1, 3);
  }

  /** Datagrams the batch could not send (either direction). */
  get sendErrors(): number {
    return this.#closed ? this.#final[4]! : this.#e.fwd!.counters[this.toTunnel * FORWARD_COUNTERS + 2]! + this.#e.fwd!.counters[this.fromTunnel * FORWARD_COUNTERS + 2]!;
  }

  /** Datagrams toward the tunnel the send budget's pool dropped in the batch: agent-budget, then session-share. */
  get droppedBudget(): number {
    return this.#drop(0, 5);
  }

  get droppedShare(): number {
    return this.#drop(1, 6);
  }

  /** Datagrams of the session's parked socket dropped as having waited past their bound (native/src/age.cc). */
  get droppedStale(): number {
    return this.#drop(2, 7);
  }

  #drop(i: number, at: number): number {
    if (this.#closed) return this.#final[at]!;
    if (!this.pooled) return 0;
    return poolDrops(this.#e)?.[this.toTunnel * POOL_DROP_REASONS + i] ?? 0;
  }

  /** Datagrams toward the tunnel the batch may still forward (< 0: no limit). */
  get credit(): number {
    return this.#closed ? 0 : this.#e.fwd!.credits[this.toTunnel]!;
  }

  set credit(n: number) {
    if (!this.#closed) this.#e.fwd!.credits[this.toTunnel] = n;
  }

  /** Reply bytes toward the plain side the batch may still forward (only with a reply budget). */
  set allowance(bytes: number) {
    if (!this.#closed) this.#e.fwd!.counters[this.fromTunnel * FORWARD_COUNTERS + 3] = bytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The credit ran out and a datagram reached JavaScript: grants the next chunk, twice the last. */
  refill(): void {
    if (this.#closed || this.pooled) return;
    this.#chunk = Math.min(2 * this.#chunk, CREDIT_CHUNK);
    this.credit = this.tunnel.grant(this.#chunk);
  }

  /**
   * Both entries still installed (a socket close or a key release removes them) and the tunnel side
   * unchanged. Read from the entries' generations without a call where the addon keeps them (the
   * sweep asks this of every session): an id the engine freed and gave to another session's entry
   * reads as gone, where `forwardLive` would see that entry installed.
   */
  get live(): boolean {
    if (this.#closed) return false;
    const f = this.#e.fwd!;
    const gens = f.gens;
    const installed = gens !== null
      ? gens[this.toTunnel] === this.#genTo && gens[this.fromTunnel] === this.#genFrom
      : f.b.forwardLive(this.#e.handle, this.toTunnel) && f.b.forwardLive(this.#e.handle, this.fromTunnel);
    return installed && this.tunnel.valid();
  }

  /** Removes both entries; the counters keep their last values. Idempotent. */
  close(): void {
    if (this.#closed) return;
    for (const g of this.tunnel.groups ?? []) g.delete(this);
    this.#final = [
      this.datagramsToTunnel, this.bytesToTunnel, this.datagramsFromTunnel, this.bytesFromTunnel,
      this.sendErrors, this.droppedBudget, this.droppedShare, this.droppedStale,
    ];
    this.#closed = true;
    const f = this.#e.fwd!;
    f.b.forwardRemove(this.#e.handle, this.toTunnel);
    f.b.forwardRemove(this.#e.handle, this.fromTunnel);
  }
}

const CONNECTED = [0, 0, 0, 0, 0, 0] as const;

function where(port: number, a: NativeAddress): number[] {
  return [port, a.family, a.a0, a.a1, a.a2, a.a3];
}

/**
 * Installs the forwarding entries of one session whose sides are `plain` and `tunnel`, or returns
 * null (nothing installed) where the batch cannot carry it: the js datapath, sockets or keys of
 * another engine, an addon without a forwarding table, a full table. `maxBytes`: the largest
 * payload forwarded either way (larger ones reach JavaScript, which drops them). `replyRatio`:
 * replies toward the plain side are held to this many times the bytes received from it (0: none).
 */
export function offload(plain: PlainEnd, tunnel: TunnelEnd, maxBytes: number, replyRatio: number): Offload | null {
  const { sealer, opener } = tunnel;
  const socket = sealer.sendSocket;
  if (!(sealer instanceof NativeSocketSealer) || !(opener instanceof NativeSocketOpener) || !(socket instanceof NativeListener)) return null;
  const dp = sealer.datapath;
  const e = sealer.engine;
  if (opener.datapath !== dp || socket.datapath !== dp || e.fwd === null || sealer.slot < 0 || opener.slot < 0 || socket.socketId < 0) return null;
  let plainSock: number;
  let plainSrc: readonly number[];
  if (plain.kind === 'client') {
    const l = plain.listener;
    if (!(l instanceof NativeListener) || l.datapath !== dp) return null;
    const a = l.destinationOf(plain.address);
    if (a === null) return null;
    plainSock = l.socketId;
    plainSrc = where(plain.port, a);
  } else {
    const ch = plain.channel;
    if (!(ch instanceof NativeChannel) || ch.datapath !== dp) return null;
    plainSock = ch.socketId;
    plainSrc = CONNECTED;
  }
  const peer = socket.destinationOf(tunnel.peer.address);
  if (plainSock < 0 || peer === null) return null;
  const peerAt = where(tunnel.peer.port, peer);
  const f = e.fwd;
  const toTunnel = f.b.forwardSeal(e.handle, plainSock, plainSrc, socket.socketId, peerAt, sealer.slot, sealer.peerKeyId, tunnel.tag, Math.min(maxBytes, MAX_DATAGRAM_PAYLOAD_BYTES));
  if (toTunnel < 0) return null;
  // A framed tunnel needs an addon that frames (an older one would send the datagrams bare).
  if (tunnel.frame !== undefined && f.b.forwardFrame?.(e.handle, toTunnel, tunnel.frame) !== true) {
    f.b.forwardRemove(e.handle, toTunnel);
    return null;
  }
  const fromTunnel = f.b.forwardPlain(e.handle, opener.slot, tunnel.tagIn ?? tunnel.tag, tunnel.pinPeer ? peerAt : CONNECTED, plainSock, plainSrc, maxBytes);
  if (fromTunnel < 0) {
    f.b.forwardRemove(e.handle, toTunnel);
    return null;
  }
  if (replyRatio > 0) f.b.forwardPair(e.handle, toTunnel, fromTunnel, replyRatio);
  const o = new Offload(e, toTunnel, fromTunnel, tunnel);
  for (const g of tunnel.groups ?? []) g.add(o);
  // No credit yet under a budget (see CREDIT_CHUNK): the pool's share, or JavaScript's chunks; without one (grant -1) no limit.
  if (tunnel.grant(0) < 0) o.credit = -1;
  else if (tunnel.pools?.join(e, toTunnel, tunnel.bank?.() ?? 0) === true) o.pooled = true;
  return o;
}
