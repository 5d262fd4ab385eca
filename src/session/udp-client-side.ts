import type { Endpoint } from '../core/address.js';
import type { DropReason } from '../observe/events.js';
import type { OffloadEnd } from '../datapath/offload.js';
import type { UdpSession } from './udp-session.js';

/** A table's live sessions, walked without an iterator (no allocation per session). */
export interface LiveSessions {
  forEach(fn: (s: UdpSession) => void): void;
}

/**
 * Where a session table's clients are: the listener socket of a route, or the tagged datagrams of
 * an agent's tunnel. `send` is on the per-datagram path: it must not allocate.
 */
export interface UdpClientSide {
  /** Sends one datagram back to the session's client (`s.replyAddress`, `s.key`, ...). */
  send(s: UdpSession, buf: Buffer): void;
  /** The address clients reached: the destination in PROXY headers sent for plain clients. */
  local(): Endpoint;
  /** The session's upstream channel opened (before it is used). */
  channelOpened?(s: UdpSession): void;
  /** The session's upstream channel was closed (the session ended, or ended while it opened). */
  channelClosed?(s: UdpSession): void;
  /** What the client side dropped by itself for `s` (a tunnel's send budget), for its record. */
  drops?(s: UdpSession): Partial<Record<DropReason, number>> | undefined;
  /** The client's side of `s` for the native batch (datapath/offload.ts), or null while it needs JavaScript. */
  offloadEnd?(s: UdpSession): OffloadEnd | null;
  /** The table swept: `live` are its sessions (native counts folded in), `sweepMs` apart, `tick` the tick that ends. */
  swept?(live: LiveSessions, sweepMs: number, tick: number): void;
  /** `s`'s client keeps filling the listener's share of the batch (ListenerReceiver.onHeavySource). */
  heavySource?(s: UdpSession): void;
}
