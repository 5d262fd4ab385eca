import type { Duplex } from 'node:stream';
import type { Endpoint, HostPort } from '../core/address.js';
import type { DatagramChannel, DatagramReceiver } from '../datapath/datagram-channel.js';
import type { DialJoin } from '../datapath/stream-datapath.js';
import type { Socket } from 'node:net';
import type { SluiceError } from '../core/errors.js';
import type { EndReason } from '../observe/events.js';
import type { StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';

/** The channel types live with the datapath that implements them; dialers hand them on. */
export type { DatagramChannel, DatagramReceiver };

/**
 * The seam between a route and whatever is behind it: a host:port (direct/), an exposed service
 * behind an agent (agent/), or another agent's service over a peer path (peer/). A route never
 * knows which.
 */

/**
 * How one datagram channel is opened. No timeout: opening a channel waits on no answer from the
 * upstream (a direct one resolves and connects a local socket; tunnel and peer ones queue until a
 * path takes the flow), so only `signal` (the owner's lifetime) bounds it.
 */
export interface OpenOptions {
  readonly signal: AbortSignal;
  /**
   * The session's client and the address it reached, as the route knows them (after a trusted
   * PROXY header). Dialers that carry them on (the agent dialer: STREAM_OPEN, datagram origins)
   * use them; a direct dialer ignores them.
   */
  readonly client?: Endpoint;
  readonly local?: Endpoint;
}

/** How one stream is dialed: `timeoutMs` bounds the whole dial (name resolution included). */
export interface DialOptions extends OpenOptions {
  readonly timeoutMs: number;
  /**
   * The caller joins an upstream that is a ConnRelaying as one (no bandwidth pacing, no first-byte
   * check), so `dialEarly` may return one (an agent's stream on a sealed data connection).
   */
  readonly connRelay?: boolean;
  /** A dial on the route's stream datapath may be joined to this client at connect (stream-datapath.ts DialJoin). */
  readonly join?: DialJoin;
}

export interface DialedStream {
  /** The caller owns it and must destroy it. Half-close (end()) must be forwarded as a FIN. */
  readonly stream: Duplex;
  /** Where it ended up, for records. */
  readonly remote: Endpoint;
}

/** How a socket relay ended (session/tcp-relay.ts RelayOutcome): the reason and the socket's counters. */
export interface SocketRelayOutcome {
  readonly reason: EndReason;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

/**
 * A dialed stream that relays a client socket itself, cheaper than Node's pipe() (an agent's
 * tunnel stream), with relayTcp's contract. Returns the relay's `stop`, or undefined when it
 * cannot now (a write is in flight): relay with relayTcp then.
 */
export interface SocketRelaying {
  relaySocket(sock: Socket, idleTimeoutMs: number, onDone: (outcome: SocketRelayOutcome) => void): ((reason: EndReason) => void) | undefined;
}

/**
 * A dialed stream that joins the client connection itself in a stream datapath (an agent's stream
 * on a sealed data connection, StreamDatapath.pipeSealed), with joinInDatapath's contract: `onDone`
 * once, unless the returned `stop` ended it first (the outcome then follows the stop). Undefined
 * when it cannot join this one (relay it otherwise: SocketRelaying, relayTcp).
 */
export interface ConnRelaying {
  relayConn(down: StreamConn, datapath: StreamDatapath, idleTimeoutMs: number, onDone: (outcome: SocketRelayOutcome) => void): ((reason: EndReason) => void) | undefined;
}

/** Opens a byte stream. Rejects with a SluiceError (SLUICE_ERR_DIAL_TIMEOUT, _DIAL_FAILED, _RESOLVE). */
export interface StreamDialer {
  dial(target: HostPort, opts: DialOptions): Promise<DialedStream>;
  /**
   * Optional: opens the stream now and returns it before the upstream answered, so the caller may
   * write at once (the client's first bytes leave with the open instead of a round trip later).
   * `settled` is called once, never synchronously: without an error when the upstream accepted;
   * with a SluiceError when it refused, timed out or the stream closed first (the stream is then
   * destroyed). `opts.signal` is not watched: the caller ends the stream itself. Throws a
   * SluiceError when the stream cannot be opened at all.
   */
  dialEarly?(target: HostPort, opts: DialOptions, settled: (err?: SluiceError) => void): DialedStream;
}

/** Opens one datagram channel per session. Rejects with a SluiceError. */
export interface DatagramDialer {
  open(target: HostPort, receiver: DatagramReceiver, opts: OpenOptions): Promise<DatagramChannel>;
}
