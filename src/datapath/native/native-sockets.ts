import type { Endpoint } from '../../core/address.js';
import type { DatagramChannel, DatagramReceiver } from '../../upstream/dialer.js';
import type { ListenerReceiver, UdpListener } from '../udp-datapath.js';
import { formatIpv4, SourceFormatter } from './address-book.js';
import type { NativeDatapath } from './native-datapath.js';
import { systemError } from './system-error.js';

/** What the engine's batch loop calls on the socket a record belongs to. */
export interface NativeSocket {
  /** One datagram; `m[b..]` is its receive record (port, family, address). */
  deliver(buf: Buffer, m: Int32Array, b: number): void;
  /** One datagram (or the socket) failed with `errno`. */
  failed(errno: number, syscall: 'recv' | 'send'): void;
}

/** Errors that mean the upstream cannot be reached at all: the session ends (as with dgram). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);

export class NativeListener implements UdpListener, NativeSocket {
  readonly #v4: boolean;
  readonly #sources = new SourceFormatter();
  #closed: Promise<void> | undefined;

  constructor(
    private readonly dp: NativeDatapath,
    private readonly id: number,
    readonly local: Endpoint,
    private readonly family: 4 | 6,
    private readonly receiver: ListenerReceiver,
  ) {
    this.#v4 = receiver.onDatagramV4 !== undefined;
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

  send(buf: Buffer, port: number, address: string, prefix: Buffer | null = null): void {
    if (this.#closed !== undefined) return;
    const dest = this.dp.book.lookup(address);
    if (dest === null || (dest.family === 6 && this.family === 4)) {
      this.receiver.onSendError(systemError(dest === null ? 22 /* EINVAL */ : 97 /* EAFNOSUPPORT */, 'send'));
      return;
    }
    this.dp.stage(this.id, buf, prefix, port, dest);
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
  #closed = false;

  constructor(
    private readonly dp: NativeDatapath,
    private readonly id: number,
    readonly remote: Endpoint,
    private readonly receiver: DatagramReceiver,
  ) {}

  deliver(buf: Buffer): void {
    this.receiver.onUpstreamDatagram(buf);
  }

  failed(errno: number, syscall: 'recv' | 'send'): void {
    if (this.#closed) return;
    const err = systemError(errno, syscall);
    if (UNREACHABLE.has(err.code)) this.receiver.onUpstreamError(err);
    else if (this.receiver.onDatagramError !== undefined) this.receiver.onDatagramError(err);
  }

  send(buf: Buffer, prefix: Buffer | null): void {
    if (!this.#closed) this.dp.stage(this.id, buf, prefix, 0, null);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.dp.release(this.id);
  }
}
