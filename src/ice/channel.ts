import type { Endpoint } from '../core/address.js';
import type { CandidateType } from './candidate.js';

/**
 * The datagram channel an ICE agent yields: the application's datagrams over the selected pair.
 *
 * Framing: every application datagram gets one prefix byte, ICE_DATA_PREFIX (0x0b), stripped on
 * receipt. The socket also carries STUN (first byte 0-3) and TURN ChannelData (64-79), and the
 * application may tunnel anything, STUN included; werift-ice, for one, swallows application
 * datagrams that parse as STUN (field/protocols.md §5.1). 0x0b is outside both ranges, outside
 * DTLS (20-63), RTP (128-191) and QUIC (64-127, 192-255) of RFC 7983/9443, and next to, not on,
 * the tunnel protocol's 0x0c-0x0e, so one socket can carry all of them.
 */

export const ICE_DATA_PREFIX = 0x0b;

/** One more byte than the application's datagram. */
export function frameIceData(buf: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(buf.length + 1);
  out[0] = ICE_DATA_PREFIX;
  out.set(buf, 1);
  return out;
}

/** The application's datagram (a view), or undefined when `buf` is not ICE data. */
export function unframeIceData(buf: Buffer): Buffer | undefined {
  return buf.length >= 1 && buf[0] === ICE_DATA_PREFIX ? buf.subarray(1) : undefined;
}

export interface PairEnd {
  readonly type: CandidateType;
  readonly address: string;
  readonly port: number;
}

/** What was selected, for records and for the next layer's decisions. */
export interface SelectedPairInfo {
  /** This side as the peer sees it: host, srflx, prflx (a NAT mapping only the checks found) or relay. */
  readonly local: PairEnd;
  readonly remote: PairEnd;
  /** Where this side sends from: the socket's address, or the relayed address for a relay base. */
  readonly base: Endpoint;
  /** Either end is a relayed candidate. */
  readonly relayed: boolean;
  /** Round-trip time in ms from the latest check on this pair that was answered on its first transmission. */
  readonly rttMs: number | undefined;
}

/** What the channel needs from its agent. */
export interface ChannelPath {
  /** Sends one framed datagram on the selected pair; false when there is none or consent has expired. */
  sendFramed(framed: Buffer): boolean;
  selectedPair(): SelectedPairInfo | undefined;
}

export type ChannelReceiver = (datagram: Buffer) => void;

/**
 * Send, receive, close. `send` never throws: false means the datagram was not sent (no selected
 * pair yet, consent expired, closed), as a UDP send may lose it anyway. The receiver gets each
 * datagram without the prefix, as a view into the received buffer; copy to keep it.
 */
export class IceDatagramChannel {
  #receiver: ChannelReceiver | undefined;
  #closed = false;
  readonly counters = { sent: 0, received: 0, notSent: 0 };

  constructor(readonly path: ChannelPath) {}

  get closed(): boolean {
    return this.#closed;
  }

  get selectedPair(): SelectedPairInfo | undefined {
    return this.path.selectedPair();
  }

  send(datagram: Uint8Array): boolean {
    const ok = !this.#closed && this.path.sendFramed(frameIceData(datagram));
    if (ok) this.counters.sent++;
    else this.counters.notSent++;
    return ok;
  }

  /** Sets the one receiver; a later call replaces it. */
  onDatagram(receiver: ChannelReceiver): void {
    this.#receiver = receiver;
  }

  /** The agent hands over each unframed datagram here. */
  deliver(datagram: Buffer): void {
    if (this.#closed) return;
    this.counters.received++;
    this.#receiver?.(datagram);
  }

  /** Stops sending and delivering. Idempotent; the agent itself stays up until it is closed. */
  close(): void {
    this.#closed = true;
    this.#receiver = undefined;
  }
}
