import type { Endpoint } from '../../core/address.js';
import type { DatagramChannel, DatagramReceiver } from '../datagram-channel.js';
import { receiverFor, type ListenerReceiver, type ReceiverFactory, type UdpListener } from '../udp-datapath.js';
import { formatIpv4, SourceFormatter, type NativeAddress } from './address-book.js';
import { systemError } from './system-error.js';

/** What the engine's batch loop calls on the socket a record belongs to. */
export interface NativeSocket {
  /** One datagram; `m[b..]` is its receive record (port, family, address). */
  deliver(buf: Buffer, m: Int32Array, b: number): void;
  /** One datagram (or the socket) failed with `errno`. */
  failed(errno: number, syscall: 'recv' | 'send'): void;
  /** A source kept filling this listener's share (native/src/heavy.cc); `m[b..]` names it. */
  heavy?(m: Int32Array, b: number): void;
}

/**
 * What a socket needs from the engine that owns it (NativeDatapath): destinations looked up in its
 * address book, datagrams staged for the next batch, and its id given back when it closes.
 */
export interface NativeEngine {
  readonly book: { lookup(address: string): NativeAddress | null };
  /** Stages `prefix` (a PROXY header, or null) then `buf` for socket `id`, to `dest` (null when connected). */
  stage(id: number, buf: Buffer, prefix: Buffer | null, port: number, dest: NativeAddress | null): void;
  /** Reserves staging for a datagram to be sealed under key `slot` at flush: its offset, or -1. */
  stageSealed(id: number, bytes: number, slot: number, port: number, dest: NativeAddress): number;
  release(id: number): void;
  /** Asks socket `id` to receive runs sent with UDP_SEGMENT as one buffer; true when it does. */
  coalesce(id: number): boolean;
}

/** Errors that mean the upstream cannot be reached at all: the session ends (as with dgram). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);

export class NativeListener<R extends ListenerReceiver = ListenerReceiver> implements UdpListener<R>, NativeSocket {
  readonly receiver: R;
  readonly #v4: boolean;
  readonly #sources = new SourceFormatter();
  #closed: Promise<void> | undefined;

  constructor(
    private readonly dp: NativeEngine,
    private readonly id: number,
    readonly local: Endpoint,
    private readonly family: 4 | 6,
    receiver: R | ReceiverFactory<R>,
  ) {
    this.receiver = receiverFor(this, receiver);
    this.#v4 = this.receiver.onDatagramV4 !== undefined;
  }

  deliver(buf: Buffer, m: Int32Array, b: number): void {
    const port = m[b + 2]!;
    if (m[b + 3] === 4) {
      if (this.#v4) this.receiver.onDatagramV4!(buf, m[b + 4]! >>> 0, port);
      else this.receiver.onDatagram(buf, formatIpv4(m[b + 4]! >>> 0), port);
    } else {
      this.receiver.onDatagram(buf, this.#sources.v6(m, b + 4), port);
    }
  }

  failed(errno: number, syscall: 'recv' | 'send'): void {
    if (this.#closed === undefined) this.receiver.onSendError(systemError(errno, syscall));
  }

  heavy(m: Int32Array, b: number): void {
    const r = this.receiver;
    if (this.#closed !== undefined || r.onHeavySource === undefined) return;
    r.onHeavySource(m[b + 3] === 4 ? formatIpv4(m[b + 4]! >>> 0) : this.#sources.v6(m, b + 4), m[b + 2]!);
  }

  coalesce(): boolean {
    return this.#closed === undefined && this.dp.coalesce(this.id);
  }

  send(buf: Buffer, port: number, address: string, prefix: Buffer | null = null): void {
    if (this.#closed !== undefined) return;
    const dest = this.#destination(address);
    if (dest !== null) this.dp.stage(this.id, buf, prefix, port, dest);
  }

  /** Where `address` is for this socket, or null after reporting why a datagram cannot go there. */
  #destination(address: string): NativeAddress | null {
    const dest = this.dp.book.lookup(address);
    if (dest === null || (dest.family === 6 && this.family === 4)) {
      this.receiver.onSendError(systemError(dest === null ? 22 /* EINVAL */ : 97 /* EAFNOSUPPORT */, 'send'));
      return null;
    }
    return dest;
  }

  /**
   * Stages a tunnel datagram of `bytes` bytes to be sealed under key slot `slot` as the batch is
   * flushed (NativeDatapath.stageSealed): where to write it in `dp.staging`, or -1 when it cannot
   * go (closed; an address this socket cannot reach, reported as for `send`).
   */
  stageSealed(bytes: number, slot: number, port: number, address: string): number {
    if (this.#closed !== undefined) return -1;
    const dest = this.#destination(address);
    return dest === null ? -1 : this.dp.stageSealed(this.id, bytes, slot, port, dest);
  }

  /** The datapath this listener belongs to. */
  get datapath(): NativeEngine {
    return this.dp;
  }

  /** The engine's socket id; -1 once closed. */
  get socketId(): number {
    return this.#closed === undefined ? this.id : -1;
  }

  /** Where `address` is, as the engine spells it, or null when this socket cannot reach it. */
  destinationOf(address: string): NativeAddress | null {
    const dest = this.dp.book.lookup(address);
    return dest === null || (dest.family === 6 && this.family === 4) ? null : dest;
  }

  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.dp.release(this.id);
      this.#closed = Promise.resolve();
    }
    return this.#closed;
  }
}

/** One session's connected socket to its upstream. */
export class NativeChannel implements DatagramChannel, NativeSocket {
  /** The engine's socket id, -1 once closed: one field for both (every agent session has a channel). */
  #id: number;

  constructor(
    private readonly dp: NativeEngine,
    id: number,
    readonly remote: Endpoint,
    private readonly receiver: DatagramReceiver,
  ) {
    this.#id = id;
  }

  deliver(buf: Buffer): void {
    this.receiver.onUpstreamDatagram(buf);
  }

  failed(errno: number, syscall: 'recv' | 'send'): void {
    if (this.#id < 0) return;
    const err = systemError(errno, syscall);
    if (UNREACHABLE.has(err.code)) this.receiver.onUpstreamError(err);
    else if (this.receiver.onDatagramError !== undefined) this.receiver.onDatagramError(err);
  }

  send(buf: Buffer, prefix: Buffer | null): void {
    if (this.#id >= 0) this.dp.stage(this.#id, buf, prefix, 0, null);
  }

  /** A connected socket is the plain side of a tunnel session (the agent's socket to its local service). */
  offloadEnd(): { readonly kind: 'channel'; readonly channel: NativeChannel } | null {
    return this.#id < 0 ? null : { kind: 'channel', channel: this };
  }

  /** The datapath this channel belongs to. */
  get datapath(): NativeEngine {
    return this.dp;
  }

  /** The engine's socket id; -1 once closed. */
  get socketId(): number {
    return this.#id;
  }

  close(): void {
    const id = this.#id;
    if (id < 0) return;
    this.#id = -1;
    this.dp.release(id);
  }
}
