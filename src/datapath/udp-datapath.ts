import type { Endpoint } from '../core/address.js';
import type { DatagramChannel, DatagramReceiver } from './datagram-channel.js';

/**
 * The UDP fast path: how datagrams of established sessions move. Everything above it (session
 * table, admission, PROXY headers, counters, events) is the same whichever implementation runs:
 * `js` on Node's dgram, or a batched native one. Nothing outside src/datapath may depend on how
 * an implementation moves packets.
 */
export interface UdpDatapath {
  readonly kind: 'js' | 'native';
  /**
   * Binds a listener (exclusively; dual-stack for `::`). Rejects with the system error
   * (EADDRINUSE, EACCES) for the caller to name the route. `receiver` may be a factory: it is then
   * called once with the bound listener, before any datagram, so the receiver can answer through
   * the listener it belongs to (built in order, nothing bound late).
   */
  listen<R extends ListenerReceiver>(host: string, port: number, receiver: R | ReceiverFactory<R>): Promise<UdpListener<R>>;
  /** A socket connected to `remote` for one session; replies arrive through `receiver`. */
  connect(remote: Endpoint, receiver: DatagramReceiver): Promise<DatagramChannel>;
  /**
   * Optional (the native datapath has it, the js one not): a socket of one client's own beside
   * `listener` (bound to its address and port, connected to the client, a receive buffer of
   * `rcvbufBytes`), so that client's datagrams queue there, not in the queue every client shares,
   * and reach the listener's receiver as before (docs/expose.md, "A flooding client's own
   * socket"). Throws the system error when it cannot be made.
   */
  isolate?(listener: UdpSender, address: string, port: number, rcvbufBytes: number): IsolatedSocket;
  /**
   * Optional (native): from now on, a source that fills `listener`'s share of the batch read after
   * read until they carried `datagrams` of it is named to its receiver
   * (`ListenerReceiver.onHeavySource`); 0 stops, -1 only asks. Returns how many were named so far,
   * or -1 when it cannot watch.
   */
  watchSources?(listener: UdpSender, datagrams: number): number;
  /** Optional (native): who runs ChaCha20-Poly1305 for tunnel datagrams sealed and opened in the batch. */
  datagramCipher?(): DatagramCipherInfo;
}

/** Intel's ipsec-mb or Node's OpenSSL (same bytes), and why ipsec-mb is not in use ('' when it is). */
export interface DatagramCipherInfo {
  readonly cipher: 'ipsec-mb' | 'openssl';
  readonly missing: string;
}

/** A client's own socket (UdpDatapath.isolate): sends as its listener does, from the same address and port. */
export interface IsolatedSocket extends UdpSender {
  /** Datagrams the kernel dropped at this socket since it opened (its queue was full); -1 when it cannot tell. */
  kernelDrops(): number;
  /**
   * Optional: how many of those the kernel dropped while the batch left the socket unread because
   * the session's send budget refused it (native/src/park.cc); they are counted by the budget's
   * reasons with the session's other budget drops, so not again as the socket's own.
   */
  budgetDrops?(): number;
  /** Optional: sets its receive buffer (SO_RCVBUF) to `bytes`; false when it cannot. */
  receiveBuffer?(bytes: number): boolean;
}

/**
 * Gets what arrives on a listener. Called once per datagram, in arrival order. `buf` may be a
 * view of memory the datapath reuses once the call returns: copy it to keep it.
 */
export interface ListenerReceiver {
  /** `address` is as the socket reports it (an IPv4 client on a dual-stack socket is ::ffff:a.b.c.d). */
  onDatagram(buf: Buffer, address: string, port: number): void;
  /**
   * Optional fast entry for IPv4 clients (mapped ones on a dual-stack socket included): the
   * address as a uint32, so a datapath that reads addresses as numbers makes no string per
   * datagram. A datapath calls this instead of `onDatagram` when it is there.
   */
  onDatagramV4?(buf: Buffer, ipv4: number, port: number): void;
  /** A datagram to a client could not be sent (ICMP error, full buffer); counted, never fatal. */
  onSendError(err: Error): void;
  /** Optional: one source kept filling this listener's share of the batch (UdpDatapath.watchSources). */
  onHeavySource?(address: string, port: number): void;
}

/** Builds a listener's receiver from the bound listener (UdpDatapath.listen). */
export type ReceiverFactory<R extends ListenerReceiver> = (listener: UdpSender) => R;

/** The receiver itself, or the one its factory builds for `listener`. */
export function receiverFor<R extends ListenerReceiver>(listener: UdpSender, receiver: R | ReceiverFactory<R>): R {
  return typeof receiver === 'function' ? receiver(listener) : receiver;
}

/** A bound listener socket: where it is, how to answer through it, how to release it. */
export interface UdpSender {
  readonly local: Endpoint;
  /**
   * Sends one datagram to a client, whole or not at all. The datapath may read `buf` after the
   * call returns (a batched one sends when the current batch ends), so the caller must not change it.
   * `prefix`, when given, goes on the wire before `buf` in the same datagram (not copied into it).
   */
  send(buf: Buffer, port: number, address: string, prefix?: Buffer | null): void;
  /** Idempotent; resolves once the socket is released. */
  close(): Promise<void>;
}

export interface UdpListener<R extends ListenerReceiver = ListenerReceiver> extends UdpSender {
  /** What gets this listener's datagrams. */
  readonly receiver: R;
  /**
   * Asks the kernel to queue a run of datagrams sent with UDP_SEGMENT (a Sluice tunnel peer's
   * batch) as one buffer, which the datapath cuts back into the same datagrams before the receiver
   * sees them: less kernel work per datagram. True when on; absent or false: one buffer per datagram.
   */
  coalesce?(): boolean;
}
