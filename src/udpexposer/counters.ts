import type { UnverifiedReplyCounters } from '../core/unverified-reply-guard.js';
import type { CookieCheck } from './retry-cookie.js';

/**
 * What each udpexposer role counts (docs/udpexposer.md, "Counters"): the server's and the client's
 * counters, their drop reasons, and a fresh zeroed set of each. The roles bump them in place on
 * the per-datagram path; the native batch's counts are folded in (server-offloads.ts, client-offloads.ts).
 */

export type ServerDropReason =
  /** The source is not an IP, or the peer policy refuses it. */
  | 'peer-denied'
  /** A connectee datagram before any client registered: udpexposer drops it too. */
  | 'no-client'
  /** A datagram from the client shorter than a tag. */
  | 'short-from-client'
  /** A client frame naming a tag the table does not hold. */
  | 'unknown-tag'
  /** A new connectee while the table is full of connectees that are still talking. */
  | 'table-full'
  /** A payload longer than maxPayloadBytes. */
  | 'too-big'
  /** A reply the server made itself, withheld because it would exceed 3x the request. */
  | 'amplification'
  /** A relayed reply to a connectee over its reply budget. */
  | 'reply-budget';

export interface UdpexposerServerCounters {
  /** Bare keepalives (no-password mode). */
  keepalives: number;
  clientAddressChanges: number;
  /** Datagrams that started with the token prefix (password mode). */
  tokens: number;
  /**
   * ... and did not verify. One with a wrong signature (a keepalive signed with another password)
   * is dropped; a malformed one is handled as data, as udpexposer does (a payload may start so).
   */
  invalidTokens: number;
  retriesSent: number;
  registeredSent: number;
  /** Echoes that failed the cookie check, by reason. */
  echoesRefused: Record<Exclude<CookieCheck, 'ok'>, number>;
  /** Signed stats requests; never answered. */
  statsRequests: number;
  connecteesAdded: number;
  connecteesEvicted: number;
  fromConnectees: { datagrams: number; bytes: number };
  toClient: { datagrams: number; bytes: number };
  fromClient: { datagrams: number; bytes: number };
  toConnectees: { datagrams: number; bytes: number };
  dropped: Record<ServerDropReason, number>;
  /** Bytes in and out of the replies the server originated to unverified sources. */
  unverifiedReplies: UnverifiedReplyCounters;
  /** Of the datagrams above, those the native batch relayed without a JavaScript call (either way). */
  forwardedInBatch: number;
}

/** A zeroed set of the server's counters. */
export function newServerCounters(): UdpexposerServerCounters {
  return {
    keepalives: 0,
    clientAddressChanges: 0,
    tokens: 0,
    invalidTokens: 0,
    retriesSent: 0,
    registeredSent: 0,
    echoesRefused: { stale: 0, forged: 0, replayed: 0 },
    statsRequests: 0,
    connecteesAdded: 0,
    connecteesEvicted: 0,
    fromConnectees: { datagrams: 0, bytes: 0 },
    toClient: { datagrams: 0, bytes: 0 },
    fromClient: { datagrams: 0, bytes: 0 },
    toConnectees: { datagrams: 0, bytes: 0 },
    dropped: { 'peer-denied': 0, 'no-client': 0, 'short-from-client': 0, 'unknown-tag': 0, 'table-full': 0, 'too-big': 0, amplification: 0, 'reply-budget': 0 },
    unverifiedReplies: { bytesIn: 0, bytesOut: 0, replies: 0, refused: 0 },
    forwardedInBatch: 0,
  };
}

export type ClientDropReason =
  /** A datagram on the main socket from anyone but the server. udpexposer accepts these; Sluice does not. */
  | 'foreign-source'
  /** Two bytes or fewer from the server (udpexposer drops these too). */
  | 'short'
  /** A payload longer than maxPayloadBytes (udpexposer would cut it short). */
  | 'too-big'
  /** A worker's bind queue was full. */
  | 'queue-full'
  /**
   * Password mode: a frame before the server ever answered with a signed token. A server only
   * sends frames to a client it registered, so such a frame is this client's own keepalive
   * coming back as data from a server with another password (udpexposer forwards those).
   */
  | 'unregistered'
  /** Password mode: a token from the server signed with another key. */
  | 'bad-signature';

export interface UdpexposerClientCounters {
  keepalivesSent: number;
  retriesAnswered: number;
  registeredReceived: number;
  /**
   * Token-looking datagrams that did not verify. A wrong signature is dropped (`dropped.bad-signature`);
   * a malformed one is handled as data with tag 0x6579, as udpexposer does.
   */
  invalidTokens: number;
  fromServer: { datagrams: number; bytes: number };
  toTarget: { datagrams: number; bytes: number };
  fromTarget: { datagrams: number; bytes: number };
  toServer: { datagrams: number; bytes: number };
  workersOpened: number;
  workersClosed: number;
  sendErrors: number;
  dropped: Record<ClientDropReason, number>;
  /** Of the datagrams above, those the native batch relayed without a JavaScript call (either way). */
  forwardedInBatch: number;
}

/** A zeroed set of the client's counters. */
export function newClientCounters(): UdpexposerClientCounters {
  return {
    keepalivesSent: 0,
    retriesAnswered: 0,
    registeredReceived: 0,
    invalidTokens: 0,
    fromServer: { datagrams: 0, bytes: 0 },
    toTarget: { datagrams: 0, bytes: 0 },
    fromTarget: { datagrams: 0, bytes: 0 },
    toServer: { datagrams: 0, bytes: 0 },
    workersOpened: 0,
    workersClosed: 0,
    sendErrors: 0,
    dropped: { 'foreign-source': 0, short: 0, 'too-big': 0, 'queue-full': 0, unregistered: 0, 'bad-signature': 0 },
    forwardedInBatch: 0,
  };
}
