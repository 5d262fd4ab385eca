/**
 * The TLS ClientHello of a new QUIC connection, read from the client's first datagrams without
 * terminating anything: each Initial packet (coalesced ones too) is opened with the keys every
 * observer can derive from its Destination Connection ID, CRYPTO frames are reassembled by offset
 * across packets and datagrams, and the ClientHello parser of the TCP path reads the result.
 * Pure: datagrams in, a step out; no timers, no sockets. Bounded in bytes and packets.
 */
import { type ClientHello, type ClientHelloError, MAX_CLIENT_HELLO_BYTES, parseClientHelloMessage } from '../tls/client-hello.js';
import { CryptoStream } from './crypto-stream.js';
import { walkInitialFrames } from './initial-frames.js';
import { type InitialKeys, clientInitialKeys } from './initial-keys.js';
import { type LongHeader, openInitial, readLongHeader } from './initial-packet.js';

/** Packets looked at (opened, skipped or refused) before giving up on a ClientHello. */
export const MAX_INITIAL_PACKETS = 32;
/** Separate pieces of CRYPTO stream held at once (a scattered ClientHello from many small frames). */
export const MAX_CRYPTO_PIECES = 256;

/** Stable reasons the first datagrams are not a QUIC client Initial this reader accepts. */
export type QuicHelloError =
  /** The first packet is not a QUIC long-header packet (or its header does not add up). */
  | 'not-quic'
  /** The first packet is a short-header (1-RTT) packet: a connection this listener never saw begin. */
  | 'short-header'
  /** A QUIC version other than 1 and 2: version negotiation, drafts, greased versions. */
  | 'unsupported-version'
  /** The first packet is a long-header packet other than an Initial (0-RTT, Handshake). */
  | 'not-initial'
  /** The first Initial does not decrypt with the keys of its DCID. */
  | 'decrypt-failed'
  /** A frame an Initial may not carry, or frames that do not add up. */
  | 'bad-frame'
  /** Over MAX_INITIAL_PACKETS packets, or a CRYPTO stream in more than MAX_CRYPTO_PIECES pieces. */
  | 'too-many-packets'
  | ClientHelloError;

export interface QuicHello {
  readonly hello: ClientHello;
  readonly version: number;
  /** The client's original Destination Connection ID (the server's Initial keys come from it). */
  readonly dcid: Buffer;
  /** The client's Source Connection ID: the DCID of the server's long-header replies. */
  readonly scid: Buffer;
}

export type QuicHelloStep =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'done'; readonly quic: QuicHello }
  | { readonly kind: 'error'; readonly reason: QuicHelloError };

const NEED_MORE: QuicHelloStep = { kind: 'need-more' };

/** One client's first datagrams. After `done` or `error` every further call answers the same. */
export class QuicInitialReader {
  #first: LongHeader | undefined;
  #keys: InitialKeys | undefined;
  #stream = new CryptoStream(MAX_CLIENT_HELLO_BYTES, MAX_CRYPTO_PIECES);
  #packets = 0;
  #final: QuicHelloStep | undefined;

  push(datagram: Buffer): QuicHelloStep {
    if (this.#final) return this.#final;
    let at = 0;
    while (at < datagram.length) {
      if (++this.#packets > MAX_INITIAL_PACKETS) return this.#fail('too-many-packets');
      const h = readLongHeader(datagram, at);
      if (typeof h === 'string') {
        if (this.#first === undefined) return this.#fail(h);
        break; // a short header runs to the datagram's end; other junk after a good packet is dropped
      }
      at = h.end;
      const step = this.#packet(datagram, h);
      if (step !== NEED_MORE) return step;
    }
    return NEED_MORE;
  }

  #packet(datagram: Buffer, h: LongHeader): QuicHelloStep {
    const first = this.#first;
    if (first === undefined && !h.initial) return this.#fail('not-initial');
    // 0-RTT and Handshake packets, and Initials of another connection or version, are passed over.
    if (!h.initial) return NEED_MORE;
    if (first !== undefined && (h.version !== first.version || !h.dcid.equals(first.dcid))) return NEED_MORE;
    const keys = (this.#keys ??= clientInitialKeys(h.params, h.dcid));
    const opened = openInitial(datagram, h, keys);
    if (typeof opened === 'string') {
      // Until one Initial opened, the keys' DCID is unproven: refuse. After, drop the damaged packet.
      if (first === undefined) return this.#fail(opened === 'malformed' ? 'not-quic' : opened);
      return NEED_MORE;
    }
    this.#first ??= h;
    const stop = walkInitialFrames(opened.payload, {
      crypto: (offset, data) => {
        const err = this.#stream.add(offset, data);
        return err === 'too-fragmented' ? 'too-many-packets' : err;
      },
    });
    if (stop !== undefined) return this.#fail(stop as QuicHelloError);
    const contiguous = this.#stream.contiguous;
    if (contiguous === 0) return NEED_MORE;
    const parsed = parseClientHelloMessage(this.#stream.prefix(contiguous));
    if (parsed === 'need-more') return NEED_MORE;
    if (typeof parsed === 'string') return this.#fail(parsed);
    const firstHeader = this.#first;
    this.#stream = new CryptoStream(0, 0);
    return (this.#final = {
      kind: 'done',
      quic: { hello: parsed, version: h.version, dcid: Buffer.from(firstHeader.dcid), scid: Buffer.from(firstHeader.scid) },
    });
  }

  #fail(reason: QuicHelloError): QuicHelloStep {
    this.#stream = new CryptoStream(0, 0);
    return (this.#final = { kind: 'error', reason });
  }
}
