import type dgram from 'node:dgram';
import type { DatagramSend, StunPeer } from '../turn/stun-transaction.js';
import { classifyDatagram, type DatagramKind } from '../protocol/stun/demux.js';

/**
 * One UDP socket, three kinds of traffic (RFC 7983): STUN, TURN ChannelData and the
 * application's own datagrams, told apart by their first byte. The demultiplexer only routes;
 * each route validates what it receives. A kind without a route is counted and dropped.
 */

/** Receives one datagram. Must not throw; `from` is as the socket reported it. */
export type DatagramHandler = (buf: Buffer, from: StunPeer) => void;

export interface DemuxRoutes {
  readonly stun?: DatagramHandler;
  readonly channelData?: DatagramHandler;
  readonly application?: DatagramHandler;
}

export class DatagramDemux {
  /** Datagrams dropped because their kind has no route. */
  readonly unrouted: Record<DatagramKind, number> = { stun: 0, 'channel-data': 0, application: 0 };
  readonly #routes: DemuxRoutes;

  constructor(routes: DemuxRoutes) {
    this.#routes = routes;
  }

  /** Routes one datagram. Bound, so it can be passed around as a DatagramHandler. */
  readonly handle: DatagramHandler = (buf, from) => {
    const kind = classifyDatagram(buf);
    const route = kind === 'stun' ? this.#routes.stun : kind === 'channel-data' ? this.#routes.channelData : this.#routes.application;
    if (route) route(buf, from);
    else this.unrouted[kind]++;
  };
}

/**
 * A DatagramSend over a dgram socket. Send failures (asynchronous, or synchronous because the
 * socket is closed) go to `onError` instead of throwing: a reply that cannot be sent is counted
 * by whoever cares, never fatal.
 */
export function dgramSender(socket: dgram.Socket, onError?: (err: Error) => void): DatagramSend {
  const cb = (err: Error | null) => {
    if (err) onError?.(err);
  };
  return (buf, port, address) => {
    try {
      socket.send(buf, port, address, cb);
    } catch (err) {
      onError?.(err as Error);
    }
  };
}

/**
 * Feeds every datagram `socket` receives to `handle` (a DatagramDemux's, usually). Returns a
 * function that detaches it again; the socket itself stays open and belongs to the caller.
 */
export function attachDatagramHandler(socket: dgram.Socket, handle: DatagramHandler): () => void {
  const onMessage = (buf: Buffer, rinfo: dgram.RemoteInfo) => handle(buf, { address: rinfo.address, port: rinfo.port });
  socket.on('message', onMessage);
  return () => void socket.off('message', onMessage);
}
