import { canonicalIp, type Endpoint } from '../../core/address.js';
import type { DatagramChannel, DatagramReceiver } from '../datagram-channel.js';
import type { DatagramCipherInfo, IsolatedSocket, ListenerReceiver, ReceiverFactory, UdpDatapath, UdpListener, UdpSender } from '../udp-datapath.js';
import { AddressBook, type NativeAddress } from './address-book.js';
import type { EngineHandle, NativeBinding, NativeLayout } from './binding.js';
import { NativeChannel, NativeListener, type NativeEngine, type NativeSocket } from './native-sockets.js';
import { HEAVY_SOURCE_RECORD, NativeIsolatedSocket } from './native-isolated.js';
import { LISTENER_RCVBUF_BYTES, LISTENER_SNDBUF_BYTES, SESSION_RCVBUF_BYTES } from '../socket-buffers.js';

export interface NativeDatapathOptions {
  /** Use UDP_SEGMENT for runs of equal-sized datagrams to one destination, where the kernel has it. Default true. */
  readonly gso?: boolean;
  /**
   * Whether sockets that ask for it (UdpListener.coalesce: the tunnel sockets) take a run sent
   * with UDP_SEGMENT as one buffer (UDP_GRO) that the batch cuts back into its datagrams
   * (native/src/gro.cc). Default true; false keeps one kernel buffer per datagram.
   */
  readonly gro?: boolean;
  /** Receive slots (datagrams per batch); each is 64 KiB of mostly untouched memory. Default 128. */
  readonly rxSlots?: number;
  /** Send records per flush. Default 512. */
  readonly txRecords?: number;
  /** Bytes for copies of datagrams that are not in receive memory. Default 1 MiB. */
  readonly txBytes?: number;
  /**
   * Where readiness comes from: `loop` (default) is one uv_poll on the main loop; `thread` is a
   * native thread blocked in epoll_wait that wakes the loop per batch. Measured slower here
   * (docs/datapath.md) and kept for measuring on other machines.
   */
  readonly readiness?: 'loop' | 'thread';
  /** SO_RCVBUF / SO_SNDBUF of listener sockets (default: socket-buffers.ts); 0 keeps the system default. */
  readonly listenerRcvbufBytes?: number;
  readonly listenerSndbufBytes?: number;
  /**
   * A bounded receive delay in microseconds (native/src/hold.cc, docs/datapath.md "A bounded
   * receive delay"): while traffic is dense, a readiness callback that handled datagrams sleeps
   * this long before the loop waits again, so what arrives meanwhile is one batch. Adds at most
   * this much to each datagram that arrives during a sleep; never to the first after a quiet
   * spell, never under a flood. Default 0 (off); at most 10000.
   */
  readonly receiveDelayUs?: number;
  /**
   * The adaptive receive delay (docs/datapath.md "An adaptive receive delay"): with
   * `receiveDelayUs` as its bound, the delay engages only while the engine harvests at least this
   * many datagrams per second (over 10 ms windows; it disengages below 3/4 of it). Default 0: no floor.
   */
  readonly receiveDelayMinRate?: number;
  /** With the floor: each sleep lasts about the time this many datagrams take to arrive at the measured rate (at most `receiveDelayUs`). Default 0: the full delay. */
  readonly receiveDelayBatch?: number;
  /**
   * SO_RCVBUF of each connected channel socket (`connect()`); default SESSION_RCVBUF_BYTES
   * (socket-buffers.ts says why), 0 keeps the system default. A process with a few channels
   * whose loop may sleep (the udpexposer client's workers) sets it like a listener's.
   */
  readonly channelRcvbufBytes?: number;
}

/**
 * The batched native datapath (docs/datapath.md). One engine owns every socket in a private epoll
 * set watched from the main loop; a readable set becomes one batch: the addon fills the receive
 * slots with recvmmsg, calls `#onBatch` once, and the datagrams go to their listener or channel
 * here, one call each, in arrival order per socket. What they send is staged in shared memory and
 * leaves in one flush when the batch ends (sendmmsg per socket, GSO for runs). Sends made outside
 * a batch (a session's set-up queue) are flushed in a microtask.
 *
 * Receive buffers are views of the slots and are reused by the next batch: receivers copy what
 * they keep (the seam's contract). A send whose buffer is in the slots is sent from there without
 * a copy; any other buffer is copied into staging when it is sent.
 */
export class NativeDatapath implements UdpDatapath, NativeEngine {
  readonly kind = 'native' as const;
  readonly gso: boolean;
  readonly #b: NativeBinding;
  readonly #engine: EngineHandle;
  readonly #slot: number;
  readonly #rxAb: ArrayBuffer;
  readonly #rx: Buffer;
  readonly #rxm: Int32Array;
  readonly #rxRec: number;
  readonly #tx: Buffer;
  readonly #txm: Int32Array;
  readonly #txRec: number;
  readonly #txMax: number;
  readonly #errm: Int32Array;
  readonly #errRec: number;
  readonly #handlers: (NativeSocket | undefined)[] = [];
  readonly #opts: NativeDatapathOptions;
  readonly book = new AddressBook();
  #txCount = 0;
  #txUsed = 0;
  #inBatch = false;
  #flushQueued = false;
  #destroyed = false;
  /** The datagram being delivered: what a receiver forwards as is, without a copy. */
  #current: Buffer | null = null;
  /** Its receive slot, -1 outside a delivery. */
  #currentIndex = -1;
  /** Called once at the end of every batch (the tunnel keys fold their drop counters: native-keys.ts). */
  afterBatch: (() => void) | null = null;
  /** The last prefix staged since the last flush, and where. */
  #prefix: Buffer | null = null;
  #prefixAt = 0;

  constructor(binding: NativeBinding, layout: NativeLayout, opts: NativeDatapathOptions = {}) {
    this.#b = binding;
    this.#opts = opts;
    this.#slot = layout.slotBytes;
    this.#rxRec = layout.rxRecord;
    this.#txRec = layout.txRecord;
    this.#errRec = layout.errRecord;
    const slots = opts.rxSlots ?? 128;
    this.#rxAb = new ArrayBuffer(slots * this.#slot);
    this.#rx = Buffer.from(this.#rxAb);
    this.#rxm = new Int32Array(slots * this.#rxRec);
    this.#txMax = opts.txRecords ?? 512;
    const txAb = new ArrayBuffer(Math.max(opts.txBytes ?? 1 << 20, 2 * this.#slot));
    this.#tx = Buffer.from(txAb);
    this.#txm = new Int32Array(this.#txMax * this.#txRec);
    this.#errm = new Int32Array(64 * this.#errRec);
    this.gso = (opts.gso ?? true) && layout.gso;
    this.#engine = binding.open(this.#rxAb, this.#rxm, txAb, this.#txm, this.#errm, this.#onBatch, this.gso, opts.readiness === 'thread');
    if (opts.receiveDelayUs) binding.receiveDelay?.(this.#engine, opts.receiveDelayUs);
    if (opts.receiveDelayMinRate || opts.receiveDelayBatch) binding.receiveDelayAdaptive?.(this.#engine, opts.receiveDelayMinRate ?? 0, opts.receiveDelayBatch ?? 0);
  }

  async listen<R extends ListenerReceiver>(host: string, port: number, receiver: R | ReceiverFactory<R>): Promise<UdpListener<R>> {
    const id = this.#b.listen(this.#engine, host, port, this.#opts.listenerRcvbufBytes ?? LISTENER_RCVBUF_BYTES, this.#opts.listenerSndbufBytes ?? LISTENER_SNDBUF_BYTES);
    const [family, address, boundPort] = this.#b.localAddress(this.#engine, id);
    const local: Endpoint = { address: canonicalIp(address)?.address ?? address, port: boundPort, family };
    const l = new NativeListener(this, id, local, family, receiver);
    this.#handlers[id] = l;
    return l;
  }

  async connect(remote: Endpoint, receiver: DatagramReceiver): Promise<DatagramChannel> {
    const id = this.#b.connect(this.#engine, remote.address, remote.port);
    const rcvbuf = this.#opts.channelRcvbufBytes ?? SESSION_RCVBUF_BYTES;
    if (rcvbuf > 0) this.#b.socketBuffers?.(this.#engine, id, rcvbuf, 0);
    const ch = new NativeChannel(this, id, remote, receiver);
    this.#handlers[id] = ch;
    return ch;
  }

  /** UdpDatapath.isolate: `listener` must be one of this datapath's, and the addon new enough. */
  isolate(listener: UdpSender, address: string, port: number, rcvbufBytes: number): IsolatedSocket {
    const b = this.#b;
    if (!(listener instanceof NativeListener) || listener.datapath !== this || listener.socketId < 0 || !b.isolate || !b.socketDrops) {
      throw Object.assign(new Error('isolate: not an open listener of this datapath, or an addon without isolate()'), { code: 'ENOTSUP' });
    }
    const id = b.isolate(this.#engine, listener.socketId, address, port, rcvbufBytes);
    const s = new NativeIsolatedSocket(
      this, id, listener.local, listener.receiver,
      (i) => (this.#destroyed ? -1 : b.socketDrops!(this.#engine, i)),
      (i, bytes) => !this.#destroyed && (b.socketBuffers?.(this.#engine, i, bytes, 0) ?? false),
      (i) => (this.#destroyed ? 0 : (b.socketBudgetDrops?.(this.#engine, i) ?? 0)),
    );
    this.#handlers[id] = s;
    return s;
  }

  /** UdpDatapath.watchSources: -1 when `listener` is not an open one of this datapath or the addon lacks it. */
  watchSources(listener: UdpSender, datagrams: number): number {
    const b = this.#b;
    if (this.#destroyed || !(listener instanceof NativeListener) || listener.datapath !== this || listener.socketId < 0 || !b.watchSources) return -1;
    return b.watchSources(this.#engine, listener.socketId, datagrams);
  }

  /** Closes every socket; the datapath is unusable afterwards. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.flush();
    this.#destroyed = true;
    this.#handlers.length = 0;
    this.#b.destroy(this.#engine);
  }

  /** Called by the addon with the number of records in the receive slots. */
  readonly #onBatch = (n: number): void => {
    const m = this.#rxm;
    const rx = this.#rx;
    const hs = this.#handlers;
    const rec = this.#rxRec;
    const slot = this.#slot;
    this.#inBatch = true;
    try {
      for (let i = 0, b = 0; i < n; i++, b += rec) {
        const h = hs[m[b]!];
        if (h === undefined) continue; // closed since the datagram arrived
        const len = m[b + 1]!;
        this.#currentIndex = i;
        if (len === HEAVY_SOURCE_RECORD) h.heavy?.(m, b);
        else if (len < 0) h.failed(-len, 'recv');
        else h.deliver((this.#current = rx.subarray(i * slot, i * slot + len)), m, b);
      }
    } finally {
      this.#inBatch = false;
      this.#current = null;
      this.#currentIndex = -1;
      this.afterBatch?.();
      this.flush();
    }
  };

  /**
   * Stages one datagram for socket `id`: `prefix` (a PROXY header) then `buf`, to `dest` (null
   * for a connected socket).
   */
  stage(id: number, buf: Buffer, prefix: Buffer | null, port: number, dest: NativeAddress | null): void {
    if (this.#destroyed) return;
    const len = buf.length;
    const plen = prefix === null ? 0 : prefix.length;
    if (this.#txCount === this.#txMax) this.flush();
    // Identity first: reading `.buffer` costs more than the rest of this function.
    const inSlots = this.#inBatch && (buf === this.#current || buf.buffer === this.#rxAb);
    if (this.#txUsed + (inSlots ? 0 : len) + plen > this.#tx.length) this.flush();
    let flags = 0;
    let off = buf.byteOffset;
    if (!inSlots) {
      off = this.#txUsed;
      buf.copy(this.#tx, off);
      this.#txUsed += len;
      flags = 1;
    }
    let poff = 0;
    if (prefix !== null) {
      if (prefix === this.#prefix) poff = this.#prefixAt;
      else {
        poff = this.#txUsed;
        prefix.copy(this.#tx, poff);
        this.#txUsed += plen;
        this.#prefix = prefix;
        this.#prefixAt = poff;
      }
    }
    this.#record(id, flags, off, len, port, dest, poff, plen);
  }

  /**
   * Stages a tunnel datagram of `bytes` bytes (header, plaintext, room for the tag) that the flush
   * seals under key slot `slot` (native/src/seal.cc) before it sends it from listener `id` to
   * `dest`. Returns where in `staging` the caller writes header and plaintext, at once (nothing
   * else may be staged first), or -1 once destroyed.
   */
  stageSealed(id: number, bytes: number, slot: number, port: number, dest: NativeAddress): number {
    if (this.#destroyed) return -1;
    if (this.#txCount === this.#txMax || this.#txUsed + bytes > this.#tx.length) this.flush();
    const off = this.#txUsed;
    this.#txUsed += bytes;
    this.#record(id, 3, off, bytes, port, dest, slot, 0);
    return off;
  }

  /** The staging memory `stageSealed` offsets point into. */
  get staging(): Buffer {
    return this.#tx;
  }

  /** Asks socket `id` to receive runs as one buffer (NativeDatapathOptions.gro); true when it does. */
  coalesce(id: number): boolean {
    if (this.#destroyed || this.#opts.gro === false) return false;
    return this.#b.coalesce?.(this.#engine, id) ?? false;
  }

  /** Received buffers that held more than one datagram, and datagrams that waited for a slot. */
  get coalesceStats(): { readonly coalesced: number; readonly carried: number } {
    const [coalesced, carried] = this.#destroyed ? [0, 0] : (this.#b.coalesceStats?.(this.#engine) ?? [0, 0]);
    return { coalesced, carried };
  }

  /** The receive delay's state: whether it is engaged, how often it engaged and disengaged, and the rate it last measured (datagrams/s). */
  get receiveDelayState(): { readonly sleeps: number; readonly engaged: boolean; readonly engages: number; readonly disengages: number; readonly rate: number } {
    const [sleeps, engaged, engages, disengages, rate] = this.#destroyed ? [0, 0, 0, 0, 0] : (this.#b.receiveDelayState?.(this.#engine) ?? [this.receiveDelays, 0, 0, 0, 0]);
    return { sleeps, engaged: engaged === 1, engages, disengages, rate };
  }

  /** How many times the engine slept to let a batch fill (NativeDatapathOptions.receiveDelayUs). */
  get receiveDelays(): number {
    return this.#destroyed ? 0 : (this.#b.receiveDelays?.(this.#engine) ?? 0);
  }

  /** Who seals and opens tunnel datagrams in the batch (DatagramCipherInfo). */
  datagramCipher(): DatagramCipherInfo {
    const r = this.#destroyed ? undefined : this.#b.sealPath?.(this.#engine);
    if (r === undefined) return { cipher: 'openssl', missing: this.#destroyed ? 'datapath closed' : 'addon without sealPath' };
    return { cipher: r[0] === 'ipsec-mb' ? 'ipsec-mb' : 'openssl', missing: r[1] };
  }

  /** The engine and binding, for the tunnel key slots (tunnel-keys.ts); null once destroyed. */
  get engine(): { readonly binding: NativeBinding; readonly handle: EngineHandle; readonly rxSlots: number } | null {
    return this.#destroyed ? null : { binding: this.#b, handle: this.#engine, rxSlots: this.#rxm.length / this.#rxRec };
  }

  /**
   * The receive slot of `buf` when it is (a view into) the datagram being delivered now, so the
   * batch may have opened it in place; else -1.
   */
  deliveringSlot(buf: Buffer): number {
    if (buf === this.#current) return this.#currentIndex;
    const i = this.#currentIndex;
    return i >= 0 && buf.buffer === this.#rxAb && Math.floor(buf.byteOffset / this.#slot) === i ? i : -1;
  }

  #record(id: number, flags: number, off: number, len: number, port: number, dest: NativeAddress | null, poff: number, plen: number): void {
    const m = this.#txm;
    const b = this.#txCount++ * this.#txRec;
    m[b] = id;
    m[b + 1] = flags;
    m[b + 2] = off;
    m[b + 3] = len;
    if (dest === null) {
      m[b + 4] = m[b + 5] = m[b + 6] = m[b + 7] = m[b + 8] = m[b + 9] = 0;
    } else {
      m[b + 4] = port;
      m[b + 5] = dest.family;
      m[b + 6] = dest.a0;
      m[b + 7] = dest.a1;
      m[b + 8] = dest.a2;
      m[b + 9] = dest.a3;
    }
    m[b + 10] = poff;
    m[b + 11] = plen;
    if (!this.#inBatch && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushSoon);
    }
  }

  readonly #flushSoon = (): void => {
    this.#flushQueued = false;
    this.flush();
  };

  /** Sends everything staged; per-datagram errors go to their sockets. */
  flush(): void {
    const n = this.#txCount;
    if (n === 0 || this.#destroyed) return;
    this.#txCount = 0;
    this.#txUsed = 0;
    this.#prefix = null;
    const errors = this.#b.flush(this.#engine, n);
    if (errors === 0) return;
    // Copied first: a handler may end a session, whose close flushes again into the same memory.
    const e = this.#errm.slice(0, errors * this.#errRec);
    for (let i = 0; i < e.length; i += this.#errRec) {
      const h = this.#handlers[e[i]!];
      for (let k = 0; h !== undefined && k < e[i + 2]!; k++) h.failed(e[i + 1]!, 'send');
    }
  }

  /** Called by a socket that closes: nothing staged may outlive it, nor reach a socket that reuses its id. */
  release(id: number): void {
    if (this.#destroyed) return;
    if (this.#txCount > 0) this.flush();
    this.#handlers[id] = undefined;
    this.#b.close(this.#engine, id);
  }
}
