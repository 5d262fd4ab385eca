import type { Endpoint } from '../core/address.js';
import type { DropReason } from '../core/reasons.js';
import type { OffloadEnd } from './offload.js';

/**
 * Receives what comes back on a datagram channel. Called with one datagram at a time; `buf` may
 * be a view of memory the channel reuses once the call returns: copy it to keep it.
 */
export interface DatagramReceiver {
  onUpstreamDatagram(buf: Buffer): void;
  /** The channel is unusable (ICMP unreachable, socket error); the owner should end the session. */
  onUpstreamError(err: Error): void;
  /** One datagram was lost to a per-datagram error (EMSGSIZE, ENOBUFS); counted, never fatal. */
  onDatagramError?(err: Error): void;
}

/** One session's datagram path to its upstream. Datagram boundaries are preserved. */
export interface DatagramChannel {
  readonly remote: Endpoint;
  /**
   * Sends one datagram whole or not at all: `prefix` (a PROXY v2 header) then `buf`, as one
   * datagram. Failures arrive through `onUpstreamError` or are counted.
   */
  send(buf: Buffer, prefix: Buffer | null): void;
  /** Idempotent. */
  close(): void;
  /** Datagrams this channel dropped by itself (a tunnel's send budget), by reason; for the session's record. */
  drops?(): Partial<Record<DropReason, number>> | undefined;
  /** This channel's side of the session for the native batch (datapath/offload.ts), or null while it needs JavaScript. */
  offloadEnd?(): OffloadEnd | null;
}
