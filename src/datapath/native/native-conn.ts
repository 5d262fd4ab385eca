import net from 'node:net';
import type { Endpoint } from '../../core/address.js';
import type { PairCounters, PairEnd, StreamConn } from '../stream-datapath.js';

/** The counters of a connection that was never a joined pair (one shared object, not one per connection). */
export const NO_COUNTERS: PairCounters = Object.freeze({ bytesFromClient: 0, bytesToClient: 0 });

/** What a connection asks of its engine's datapath (native-stream-datapath.ts), by connection id. */
export interface ConnEngine {
  localOf(id: number): Endpoint;
  counters(id: number): Float64Array;
  release(id: number): number;
  write(id: number, buf: Buffer): number;
  read(id: number, buf: Buffer): number;
  watch(id: number): void;
  close(id: number): void;
  resetOnClose(id: number): void;
  keepAlive(id: number, idleS: number, intervalS: number, count: number): boolean;
}

/** One connection of the engine: held (accepted or dialed, not joined), joined, or handed to Node. */
export class NativeConn implements StreamConn {
  #destroyed = false;
  held = true;
  partner: NativeConn | undefined;
  finalCounters: PairCounters = NO_COUNTERS;
  #onEnd: ((end: PairEnd) => void) | undefined;
  #sock: net.Socket | undefined;
  #local: Endpoint | undefined;
  #readable: (() => void) | undefined;
  /** Bytes read off this connection with its PROXY header that belong to the stream (relayed first). */
  unread: Buffer | undefined;
  /** The client side of a joined pair (whose counters the engine keeps). */
  #client = false;
  /** A dialed connection the engine joined to this client at connect, until `pipe` takes note. */
  joinedTo: NativeConn | undefined;
  /** On the client: the dialed connection joined to it at connect, until `pipe` takes note. */
  joinedFrom: NativeConn | undefined;
  /** On the client: its pair's end, when the pair ended before `pipe` took note (given to `pipe`'s `onEnd`). */
  lateEnd: PairEnd | undefined;
  /** A relayed connection's counters (native-relayed.ts): its bytes pass through JavaScript. */
  relayed: { readonly bytesRead: number; readonly bytesWritten: number } | undefined;

  constructor(
    readonly dp: ConnEngine,
    readonly id: number,
    readonly remote: Endpoint | undefined,
    local: Endpoint | undefined,
  ) {
    this.#local = local;
  }

  /** Once handed to Node, the socket's own state. */
  get joined(): boolean {
    return this.joinedTo !== undefined;
  }

  get destroyed(): boolean {
    return this.#sock ? this.#sock.destroyed : this.#destroyed;
  }

  get local(): Endpoint {
    return (this.#local ??= this.destroyed || !this.held ? { address: '0.0.0.0', port: 0, family: 4 } : this.dp.localOf(this.id));
  }

  get bytesRead(): number {
    return this.#counter(0);
  }

  get bytesWritten(): number {
    return this.#counter(1);
  }

  #counter(which: 0 | 1): number {
    if (this.#sock) return which === 0 ? this.#sock.bytesRead : this.#sock.bytesWritten;
    if (this.relayed) return which === 0 ? this.relayed.bytesRead : this.relayed.bytesWritten;
    if (!this.#client) return 0;
    if (this.destroyed) return which === 0 ? this.finalCounters.bytesFromClient : this.finalCounters.bytesToClient;
    return this.dp.counters(this.id)[which]!;
  }

  socket(): net.Socket {
    if (this.#sock) return this.#sock;
    if (this.destroyed || !this.held) {
      this.#sock = new net.Socket();
      this.#sock.destroy();
      return this.#sock;
    }
    this.held = false;
    const fd = this.dp.release(this.id);
    this.#sock = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    this.#sock.pause();
    this.#sock.on('error', () => {});
    if (this.unread) this.#sock.unshift(this.unread);
    this.unread = undefined; // as an accepted js socket: the relay's own handlers decide
    return this.#sock;
  }

  writeFirst(buf: Buffer): boolean {
    if (this.#sock) return this.#sock.write(buf);
    return !this.destroyed && this.held && this.dp.write(this.id, buf) === buf.length;
  }

  /**
   * Resolves once the held connection has bytes, a FIN or an error to look at (read()), or is
   * destroyed. One wait at a time.
   */
  readable(): Promise<void> {
    return new Promise((resolve) => {
      if (this.destroyed || !this.held) return resolve();
      this.#readable = resolve;
      this.dp.watch(this.id);
    });
  }

  onReadable(): void {
    const r = this.#readable;
    this.#readable = undefined;
    r?.();
  }

  /** Reads what is waiting into `buf`: the byte count, 0 at EOF, or -errno (-EAGAIN: nothing yet). */
  read(buf: Buffer): number {
    return this.destroyed || !this.held ? 0 : this.dp.read(this.id, buf);
  }

  pairWith(up: NativeConn, onEnd: (end: PairEnd) => void): void {
    this.held = up.held = false;
    this.#client = true;
    this.partner = up;
    up.partner = this;
    this.#onEnd = onEnd;
  }

  /** Attached to a trunk as one of its streams (native-trunk.ts): the engine keeps its counters. */
  attachedAsStream(onEnd: (end: PairEnd) => void): void {
    this.held = false;
    this.#client = true;
    this.#onEnd = onEnd;
  }

  closedAsPair(counters: PairCounters): void {
    this.finalCounters = counters;
    this.#destroyed = true;
    if (this.partner) this.partner.#destroyed = true;
    this.#onEnd = undefined;
  }

  endedAsPair(end: PairEnd): void {
    const onEnd = this.#onEnd;
    const kept = end.kept ? this.partner : undefined;
    this.closedAsPair(end);
    if (kept) {
      // A sealed pair's clean end kept its sealed side: held again, no longer this pair's.
      kept.#destroyed = false;
      kept.held = true;
      kept.partner = this.partner = undefined;
    }
    onEnd?.(end);
  }

  destroy(): void {
    if (this.#sock) return void this.#sock.destroy();
    if (this.destroyed) return;
    if (this.partner) {
      // One side of a joined pair: the pair ends as if stopped.
      const client = this.#client ? this : this.partner;
      client.#onEnd = undefined;
    }
    this.#destroyed = true;
    this.dp.close(this.id);
    this.onReadable();
  }

  keepAlive(idleS: number, intervalS: number, count: number): void {
    if (this.#sock) return void this.#sock.setKeepAlive(true, idleS * 1000);
    if (!this.destroyed) this.dp.keepAlive(this.id, idleS, intervalS, count);
  }

  reset(): void {
    if (this.#sock) return void this.#sock.resetAndDestroy();
    if (this.destroyed) return;
    this.dp.resetOnClose(this.id);
    if (this.held) this.destroy();
  }
}
