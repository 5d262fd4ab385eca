import type { ReplyBudget } from '../core/reply-budget.js';

/* The per-route session settings every place that builds a route shares (routes, exposed services, connect listeners). */

/** A token bucket: `perSecond` refill, `burst` capacity. `perSecond: 0` turns the limit off. */
export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/**
 * Byte-rate limits of one direction pair: `up` is client to upstream, `down` upstream to client;
 * `perSecond` in bytes, `burst` in bytes. An absent direction is unlimited.
 */
export interface BandwidthLimit {
  readonly up?: RateLimit;
  readonly down?: RateLimit;
}

/** `bandwidth:` of a route (admission/bandwidth-limiter.ts, docs/bans.md "Bandwidth limits"). */
export interface BandwidthSettings {
  readonly perSource?: BandwidthLimit;
  readonly perRoute?: BandwidthLimit;
  /** `gateway.agents.<name>.bandwidth.perAgent` only: one bucket pair over all of the agent's services. */
  readonly perAgent?: BandwidthLimit;
}

export type OnLimit = 'reject' | 'evict-lru';

export interface UdpSettings {
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly maxSessionsPerSource: number;
  readonly rate: RateLimit;
  readonly ratePerSource: RateLimit;
  readonly onLimit: OnLimit;
  /** Datagrams held per session while its upstream socket is being set up. */
  readonly setupQueue: number;
  /** Largest datagram payload forwarded; larger ones are dropped and counted. */
  readonly maxDatagramBytes: number;
  /** Replies per session at most `ratio` x bytes received over the window (core/reply-budget.ts); absent: off. */
  readonly replyBudget?: ReplyBudget;
  /**
   * Datagrams a second from one client above which it gets a socket of its own, so what it sends
   * beyond what is read is dropped in its own queue (docs/expose.md, "A flooding client's own
   * socket"); 0 or absent: never. Native datapath only.
   */
  readonly isolateAbove?: number;
}

export interface TcpSettings {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerSource: number;
  readonly rate: RateLimit;
  readonly ratePerSource: RateLimit;
}

/** PROXY protocol for one route (docs/proxy-protocol.md). */
export interface ProxyProtocolSettings {
  /** Senders whose headers are trusted (CIDR texts); empty = never parse a header. */
  readonly accept: readonly string[];
  /** Header sent to the upstream; v1 is TCP only. */
  readonly send: 'v1' | 'v2' | undefined;
  /** How a UDP session sends v2: on every datagram, or on the first ones (until the upstream answers). */
  readonly udp: 'every' | 'first';
  readonly headerTimeoutMs: number;
  /**
   * TCP, untrusted senders on a route with `accept`: how long to wait for the first bytes before
   * dialing, so a PROXY header from them is refused before any upstream connection (0 = dial at
   * once and check the first bytes after). Absent = 50 ms.
   */
  readonly untrustedWaitMs?: number;
  readonly maxHeaderBytes: number;
}
