import type { Duplex } from 'node:stream';
import type { Endpoint, HostPort } from '../core/address.js';
import type { DropReason } from '../observe/events.js';

/**
 * The seam between a route and whatever is behind it: a host:port (direct/), an exposed service
 * behind an agent (agent/), or another agent's service over a peer path (peer/). A route never
 * knows which.
 */

export interface DialOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /**
   * The session's client and the address it reached, as the route knows them (after a trusted
   * PROXY header). Dialers that carry them on (the agent dialer: STREAM_OPEN, datagram origins)
   * use them; a direct dialer ignores them.
   */
  readonly client?: Endpoint;
  readonly local?: Endpoint;
}

export interface DialedStream {
  /** The caller owns it and must destroy it. Half-close (end()) must be forwarded as a FIN. */
  readonly stream: Duplex;
  /** Where it ended up, for records. */
  readonly remote: Endpoint;
}

/** Opens a byte stream. Rejects with a SluiceError (SLUICE_ERR_DIAL_TIMEOUT, _DIAL_FAILED, _RESOLVE). */
export interface StreamDialer {
  dial(target: HostPort, opts: DialOptions): Promise<DialedStream>;
}

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
}

/** Opens one datagram channel per session. Rejects with a SluiceError. */
export interface DatagramDialer {
  open(target: HostPort, receiver: DatagramReceiver, opts: DialOptions): Promise<DatagramChannel>;
}
