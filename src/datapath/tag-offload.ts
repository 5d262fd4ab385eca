import type { DatagramChannel } from './datagram-channel.js';
import type { UdpSender } from './udp-datapath.js';
import { FORWARD_COUNTERS, nativeKeys, type Engine } from './native/native-keys.js';
import { NativeDatapath } from './native/native-datapath.js';
import { NativeChannel, NativeListener } from './native/native-sockets.js';

/**
 * One udpexposer channel forwarded inside the native batch (docs/datapath.md, "udpexposer
 * channels in the batch"). A channel joins a plain side (datagrams as they are: a connectee behind
 * the server's socket, or the client's worker socket to the target) and a framed side (the same
 * datagrams behind the channel's two tag bytes: the client behind the server's socket, or the
 * server behind the client's main socket). Two entries carry it: plain -> framed (the tag added),
 * framed -> plain (a frame with this tag from the framed peer, the tag stripped), without a
 * JavaScript call each. What an entry cannot decide (too short or too large, a token in password
 * mode, over the reply budget, another source) stays in the batch for JavaScript, as before.
 * Counters are read from shared memory without a call.
 */

/** A side of a channel: a listener and the peer behind it, or a connected socket. */
export type TagSide =
  | { readonly socket: UdpSender; readonly address: string; readonly port: number }
  | { readonly socket: DatagramChannel };

export interface TagOffloadOptions {
  /** The udpexposer tag (0-65535). */
  readonly tag: number;
  /** Least length of a plain datagram forwarded (1: an empty one is a keepalive, left to JavaScript). */
  readonly minPlain: number;
  /** Least length of a frame forwarded, tag included. */
  readonly minFramed: number;
  /** Largest payload forwarded either way. */
  readonly maxPayload: number;
  /** Plain datagrams beginning with these two bytes (a u16) are left to JavaScript; -1: none. */
  readonly guard: number;
  /** Frames toward the plain side at most `ratio` x the plain bytes received (plus `allowance`); 0: no budget. */
  readonly replyRatio: number;
}

const TAGGED = 1;
const UNTAGGED = 2;

/** Both entries of one channel. `close` removes them; counters stay readable. */
export class TagOffload {
  readonly #e: Engine;
  readonly #final = [0, 0, 0, 0, 0];
  #closed = false;

  constructor(
    e: Engine,
    /** Plain side -> framed side (the tag added). */
    readonly toFramed: number,
    /** Framed side -> plain side (the tag stripped). */
    readonly toPlain: number,
  ) {
    this.#e = e;
  }

  #c(entry: number, i: number, at: number): number {
    return this.#closed ? this.#final[at]! : this.#e.fwd!.counters[entry * FORWARD_COUNTERS + i]!;
  }

  /** Datagrams (and their payload bytes) the batch sent plain -> framed. */
  get datagramsToFramed(): number {
    return this.#c(this.toFramed, 0, 0);
  }

  get bytesToFramed(): number {
    return this.#c(this.toFramed, 1, 1);
  }

  /** ... and framed -> plain. */
  get datagramsToPlain(): number {
    return this.#c(this.toPlain, 0, 2);
  }

  get bytesToPlain(): number {
    return this.#c(this.toPlain, 1, 3);
  }

  /** Datagrams the batch could not send (either direction). */
  get sendErrors(): number {
    return this.#closed ? this.#final[4]! : this.#c(this.toFramed, 2, 4) + this.#c(this.toPlain, 2, 4);
  }

  /** Payload bytes toward the plain side the batch may still forward (with a reply budget). */
  set allowance(bytes: number) {
    if (!this.#closed) this.#e.fwd!.counters[this.toPlain * FORWARD_COUNTERS + 3] = bytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Both entries still installed (a socket close removes them). */
  get live(): boolean {
    if (this.#closed) return false;
    const f = this.#e.fwd!;
    return f.b.forwardLive(this.#e.handle, this.toFramed) && f.b.forwardLive(this.#e.handle, this.toPlain);
  }

  /** Removes both entries; the counters keep their last values. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#final.splice(0, 5, this.datagramsToFramed, this.bytesToFramed, this.datagramsToPlain, this.bytesToPlain, this.sendErrors);
    this.#closed = true;
    const f = this.#e.fwd!;
    f.b.forwardRemove(this.#e.handle, this.toFramed);
    f.b.forwardRemove(this.#e.handle, this.toPlain);
  }
}

const CONNECTED = [0, 0, 0, 0, 0, 0] as const;

/** The engine socket id, its datapath, and where its peer is ([port, family, address x4]). */
function nativeSide(s: TagSide): { id: number; dp: NativeDatapath; at: readonly number[] } | null {
  if ('address' in s) {
    const l = s.socket;
    if (!(l instanceof NativeListener) || !(l.datapath instanceof NativeDatapath)) return null;
    const a = l.destinationOf(s.address);
    return a === null || l.socketId < 0 ? null : { id: l.socketId, dp: l.datapath, at: [s.port, a.family, a.a0, a.a1, a.a2, a.a3] };
  }
  const ch = s.socket;
  if (!(ch instanceof NativeChannel) || !(ch.datapath instanceof NativeDatapath) || ch.socketId < 0) return null;
  return { id: ch.socketId, dp: ch.datapath, at: CONNECTED };
}

/**
 * Installs the two entries of one channel, or returns null (nothing installed) where the batch
 * cannot carry it: the js datapath, sockets of two engines, an addon without udpexposer entries,
 * a full table, an entry already there for the same source or tag.
 */
export function tagOffload(plain: TagSide, framed: TagSide, o: TagOffloadOptions): TagOffload | null {
  const p = nativeSide(plain);
  const fr = nativeSide(framed);
  if (p === null || fr === null || p.dp !== fr.dp) return null;
  const e = nativeKeys(p.dp);
  const f = e?.fwd;
  if (!e || !f || typeof f.b.forwardTagged !== 'function' || typeof f.b.forwardTagPair !== 'function') return null;
  const toFramed = f.b.forwardTagged(e.handle, TAGGED, p.id, p.at, fr.id, fr.at, o.tag, o.minPlain, o.maxPayload, o.guard);
  if (toFramed < 0) return null;
  const toPlain = f.b.forwardTagged(e.handle, UNTAGGED, fr.id, fr.at, p.id, p.at, o.tag, o.minFramed, o.maxPayload, -1);
  if (toPlain < 0 || (o.replyRatio > 0 && !f.b.forwardTagPair(e.handle, toFramed, toPlain, o.replyRatio))) {
    f.b.forwardRemove(e.handle, toFramed);
    if (toPlain >= 0) f.b.forwardRemove(e.handle, toPlain);
    return null;
  }
  return new TagOffload(e, toFramed, toPlain);
}
