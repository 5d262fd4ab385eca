import type { Clock } from '../core/clock.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';

/**
 * Sends one datagram: `prefix` (a frame's two tag bytes), if any, then `buf`. Must not throw. The
 * sender may read both after it returns (a batched datapath sends when its batch ends), so the
 * caller passes buffers it will not change: a received datagram or a connectee's own tag bytes.
 */
export type DatagramSender = (buf: Buffer, prefix: Buffer | null, port: number, address: string) => void;

export interface PeerAddress {
  /** Canonical text (canonicalIp). */
  readonly address: string;
  readonly port: number;
}

/**
 * Rare events, one call each: who the client is, connectees coming and going, the client role
 * being authenticated, worker sockets. Nothing here fires per datagram, so a sink may log them
 * (the CLI prints them as udpexposer does). Counters cover everything else.
 */
export type UdpexposerEvent =
  | {
      readonly type: 'client-address';
      readonly address: PeerAddress;
      readonly previous: PeerAddress | undefined;
      /** True in password mode (a signed echo of a fresh Retry); false for a bare keepalive. */
      readonly authenticated: boolean;
    }
  | { readonly type: 'connectee-added'; readonly tag: number; readonly peer: PeerAddress; readonly evicted: { readonly tag: number; readonly peer: PeerAddress } | undefined }
  | { readonly type: 'authenticated'; readonly server: PeerAddress }
  /** Server, password mode: a token signed with another key (a client with the wrong -P); at most once a minute. */
  | { readonly type: 'bad-signature'; readonly peer: PeerAddress }
  /**
   * Client, password mode: `unanswered` registrations in a row got no signed answer (wrong -P, a
   * server without -P, a wrong -a, or a server that is down). Fires once per run of silence.
   */
  | { readonly type: 'registration-unanswered'; readonly server: PeerAddress; readonly unanswered: number }
  | { readonly type: 'worker-opened'; readonly tag: number }
  | { readonly type: 'worker-closed'; readonly tag: number };

export interface UdpexposerDeps {
  readonly clock: Clock;
  /**
   * How datagrams move (docs/datapath.md): the js datapath on Node's dgram by default, or the
   * batched native one. Every socket of a server or client (main socket and workers) is on it.
   */
  readonly datapath?: UdpDatapath;
  readonly onEvent?: (e: UdpexposerEvent) => void;
  /** Secret of the server's Retry cookies; random per process by default. */
  readonly cookieSecret?: Buffer;
}
