import { MAX_DATAGRAM_PAYLOAD_BYTES } from '../protocol/tunnel/index.js';
import { CREDIT_CHUNK, type TunnelEnd } from './offload.js';
import { FORWARD_COUNTERS, NativeSocketOpener, NativeSocketSealer, type Engine } from './native/native-keys.js';
import { NativeListener } from './native/native-sockets.js';

/**
 * A relayed peer flow at the gateway forwarded inside the native batch (docs/datapath.md, "Peer
 * paths in the batch"): two tunnel sides, the opener's (its peer tag, its link's keys) and the
 * target's (the connectee tag, the target link's keys). Each direction is one reseal entry: a
 * datagram opened in the harvest under one side's key with its tag is sealed again, in place,
 * under the other side's key for the other tag and sent to the other agent, as JavaScript's
 * open-then-sendData would (same bytes, same shared sequence counters). What an entry cannot
 * decide (no credit, too large, another source, an origin block) reaches JavaScript as before.
 */
export class RelayOffload {
  readonly #e: Engine;
  readonly #final = [0, 0, 0, 0, 0];
  readonly #chunk = [4, 4];
  #closed = false;

  constructor(
    e: Engine,
    /** Opener -> target. */
    readonly toTarget: number,
    /** Target -> opener. */
    readonly toOpener: number,
    readonly opener: TunnelEnd,
    readonly target: TunnelEnd,
  ) {
    this.#e = e;
  }

  #c(entry: number, i: number, at: number): number {
    return this.#closed ? this.#final[at]! : this.#e.fwd!.counters[entry * FORWARD_COUNTERS + i]!;
  }

  get datagramsToTarget(): number {
    return this.#c(this.toTarget, 0, 0);
  }

  get bytesToTarget(): number {
    return this.#c(this.toTarget, 1, 1);
  }

  get datagramsToOpener(): number {
    return this.#c(this.toOpener, 0, 2);
  }

  get bytesToOpener(): number {
    return this.#c(this.toOpener, 1, 3);
  }

  get sendErrors(): number {
    const c = this.#e.fwd?.counters;
    return this.#closed || !c ? this.#final[4]! : c[this.toTarget * FORWARD_COUNTERS + 2]! + c[this.toOpener * FORWARD_COUNTERS + 2]!;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Datagrams toward the target (0) or the opener (1) the batch may still forward (< 0: no limit). */
  credit(toward: 0 | 1): number {
    return this.#closed ? 0 : this.#e.fwd!.credits[toward === 0 ? this.toTarget : this.toOpener]!;
  }

  /** That direction's credit ran out and a datagram reached JavaScript: the next chunk, twice the last (CREDIT_CHUNK at most). */
  refill(toward: 0 | 1): void {
    if (this.#closed) return;
    this.#chunk[toward] = Math.min(2 * this.#chunk[toward]!, CREDIT_CHUNK);
    const end = toward === 0 ? this.target : this.opener;
    this.#e.fwd!.credits[toward === 0 ? this.toTarget : this.toOpener] = end.grant(this.#chunk[toward]!);
  }

  /** Both entries installed and both sides unchanged. */
  get live(): boolean {
    if (this.#closed) return false;
    const f = this.#e.fwd!;
    return f.b.forwardLive(this.#e.handle, this.toTarget) && f.b.forwardLive(this.#e.handle, this.toOpener) && this.opener.valid() && this.target.valid();
  }

  /** Removes both entries; the counters keep their last values. Idempotent. */
  close(): void {
    if (this.#closed) return;
    for (const g of [...(this.opener.groups ?? []), ...(this.target.groups ?? [])]) g.delete(this);
    this.#final.splice(0, 5, this.datagramsToTarget, this.bytesToTarget, this.datagramsToOpener, this.bytesToOpener, this.sendErrors);
    this.#closed = true;
    const f = this.#e.fwd!;
    f.b.forwardRemove(this.#e.handle, this.toTarget);
    f.b.forwardRemove(this.#e.handle, this.toOpener);
  }
}

interface NativeSide {
  readonly e: Engine;
  readonly socket: NativeListener;
  readonly at: number[];
  readonly sealer: NativeSocketSealer;
  readonly opener: NativeSocketOpener;
}

function nativeSide(end: TunnelEnd): NativeSide | null {
  const { sealer, opener } = end;
  const socket = sealer.sendSocket;
  if (!(sealer instanceof NativeSocketSealer) || !(opener instanceof NativeSocketOpener) || !(socket instanceof NativeListener)) return null;
  if (opener.datapath !== sealer.datapath || socket.datapath !== sealer.datapath || sealer.slot < 0 || opener.slot < 0 || socket.socketId < 0 || end.frame !== undefined) return null;
  const a = socket.destinationOf(end.peer.address);
  return a === null ? null : { e: sealer.engine, socket, at: [end.peer.port, a.family, a.a0, a.a1, a.a2, a.a3], sealer, opener };
}

const ANY = [0, 0, 0, 0, 0, 0] as const;

/**
 * Installs the two reseal entries of a relayed flow between `opener` and `target`, or returns
 * null (nothing installed) where the batch cannot carry it: the js datapath, keys or sockets of
 * another engine, a framed side, an addon without reseal entries, a full table. Neither direction
 * has credit at first (each side's `grant` gives it, chunk by chunk, as for an exposure).
 */
export function relayOffload(opener: TunnelEnd, target: TunnelEnd, maxBytes: number): RelayOffload | null {
  const a = nativeSide(opener);
  const b = nativeSide(target);
  if (!a || !b || a.e !== b.e || !a.e.fwd || typeof a.e.fwd.b.forwardReseal !== 'function') return null;
  const f = a.e.fwd;
  const reseal = f.b.forwardReseal!.bind(f.b);
  const max = Math.min(maxBytes, MAX_DATAGRAM_PAYLOAD_BYTES);
  const from = (x: NativeSide, end: TunnelEnd) => (end.pinPeer ? x.at : ANY);
  const toTarget = reseal(a.e.handle, a.opener.slot, opener.tagIn ?? opener.tag, from(a, opener), b.socket.socketId, b.at, b.sealer.slot, b.sealer.peerKeyId, target.tag, max);
  if (toTarget < 0) return null;
  const toOpener = reseal(a.e.handle, b.opener.slot, target.tagIn ?? target.tag, from(b, target), a.socket.socketId, a.at, a.sealer.slot, a.sealer.peerKeyId, opener.tag, max);
  if (toOpener < 0) {
    f.b.forwardRemove(a.e.handle, toTarget);
    return null;
  }
  const o = new RelayOffload(a.e, toTarget, toOpener, opener, target);
  // Without a budget (grant -1) no limit; with one, none until the first refill.
  if (target.grant(0) < 0) f.credits[toTarget] = -1;
  if (opener.grant(0) < 0) f.credits[toOpener] = -1;
  for (const g of [...(opener.groups ?? []), ...(target.groups ?? [])]) g.add(o);
  return o;
}
