import type { Socket } from 'node:net';
import type { Endpoint } from '../core/address.js';
import type { DataKeys } from '../protocol/tunnel/index.js';
import type { StreamTrunk } from './stream-trunk.js';
import type { RelayedConn, RelayedConnEvents } from './relayed-conn.js';

/**
 * The TCP stream datapath: how connections are accepted, dialed and joined. Decisions (admission,
 * PROXY headers, where to dial, what to record) are the route's, the same whichever
 * implementation runs: `js` on Node's `net`, or `native`, where an addon accepts in batches,
 * dials, and moves the bytes of a joined pair with splice(2) without them entering JavaScript.
 */
export interface StreamDatapath {
  readonly kind: 'js' | 'native';
  /**
   * Binds a listener (exclusively; dual-stack for `::`; backlog 4096). Each accepted connection
   * goes to `onConnection` unread. Rejects with the system error (EADDRINUSE, EACCES).
   */
  listen(host: string, port: number, onConnection: (conn: StreamConn) => void): Promise<StreamListener>;
  /**
   * Connects to an IP literal within `timeoutMs` (0: the system's own limit). `done` is called
   * once, never before `dial` returns: with the connection, or a system error (ECONNREFUSED,
   * ETIMEDOUT, ECONNRESET...). After `cancel()` it is not called and the socket is closed. No
   * promise and no signal listener: this is the per-connection path (`connectStream` wraps it).
   */
  dial(remote: Endpoint, timeoutMs: number, done: (err: Error | undefined, conn?: StreamConn) => void, join?: DialJoin): DialInFlight;
  /**
   * Joins two connections of this datapath: bytes both ways, a FIN forwarded as a FIN, reading
   * paused while the other side cannot take more (nothing buffered without bound), `idleTimeoutMs`
   * of no bytes either way (0: never) ends both. `onEnd` is called once, unless `stop` (the
   * returned function) ended the pair first; `stop` returns the counters at that moment.
   * Undefined when this datapath cannot join these two (the caller relays them as Node sockets).
   */
  pipe(down: StreamConn, up: StreamConn, idleTimeoutMs: number, onEnd: (end: PairEnd) => void): ((/* idempotent */) => PairCounters) | undefined;
  /**
   * Joins a plain connection to a sealed data connection: bytes read from `plain` leave on `sealed`
   * as records, records read from `sealed` are opened and written to `plain`; END records for
   * FINs, resets both ways (docs/tunnel-protocol.md "Data connections"). Counters are `plain`'s:
   * bytesFromClient = plaintext read from `plain`, bytesToClient = plaintext written to it.
   * Reasons: client-* = `plain` ended first or failed, upstream-* = `sealed` did (codes ESEALED_AUTH,
   * ESEALED_FORMAT, ESEALED_TRUNCATED, or the system's). Same contract as `pipe` otherwise. With
   * `keep`, a pair whose directions both ended with END leaves `sealed` open with nothing past that
   * END read from it: the end says `kept`, and `sealed` is the caller's again (for another stream).
   */
  pipeSealed(plain: StreamConn, sealed: StreamConn, keys: SealedKeys, idleTimeoutMs: number, onEnd: (end: PairEnd) => void, keep?: boolean): (() => PairCounters) | undefined;
  /**
   * Makes `sealed` (a data connection after its hello) a trunk that carries many streams
   * (stream-trunk.ts). Only the native datapath has trunks; undefined where there are none.
   */
  trunk?(sealed: StreamConn, keys: SealedKeys, onEnd: (code: string) => void): StreamTrunk | undefined;
  /**
   * Optional: carries a held connection's bytes to and from JavaScript without a Node socket
   * (relayed-conn.ts), `idleTimeoutMs` of no bytes either way (0: never) reported as `idle`.
   * Undefined when this datapath cannot (the caller uses `socket()`).
   */
  relayed?(conn: StreamConn, idleTimeoutMs: number, events: RelayedConnEvents): RelayedConn | undefined;
  /**
   * Optional: who seals and opens the records of sealed pairs and trunks (RecordCipherInfo). `use`
   * is for tests: pairs and trunks started afterwards use that implementation where it is loaded.
   * Absent on the js datapath (node:crypto, that is OpenSSL).
   */
  recordCipher?(use?: RecordCipherName): RecordCipherInfo;
}

/** Who runs AES-128-GCM for sealed records: Intel's ipsec-mb (VAES/AVX-512 where the CPU has them) or Node's OpenSSL. Same bytes. */
export type RecordCipherName = 'ipsec-mb' | 'openssl';

/** The record cipher in use, ipsec-mb's code path for this CPU ('' without it), and why ipsec-mb is not in use ('' when it is loaded). */
export interface RecordCipherInfo {
  readonly cipher: RecordCipherName;
  readonly arch: string;
  readonly missing: string;
}

/** A sealed data connection's keys (docs/tunnel-protocol.md "Data connections"): AES-128-GCM, a key and IV per direction, and the next sequence number of each. */
export type SealedKeys = DataKeys;

/**
 * A dial's offer to be joined to its client at connect: the datapath may start the pair the moment
 * the dial succeeds (native: in the engine, before JavaScript sees the answer; `joined` is then
 * true on the dialed connection and `pipe` only takes note). Only offered where the route would
 * join the two anyway: no PROXY header to send, no bandwidth pacing, no client bytes to check.
 * The pair's bytes may move, and the pair may even end, before the answer reaches `done`; `pipe`
 * still reports that end once, to its `onEnd`.
 */
export interface DialJoin {
  readonly down: StreamConn;
  readonly idleTimeoutMs: number;
}

/** A dial not finished yet. */
export interface DialInFlight {
  /** Gives the dial up: its `done` is not called. Idempotent; a no-op once `done` ran. */
  cancel(): void;
}

/**
 * `dial` as a promise: rejects with the dial's system error, or with `signal.reason` when the
 * signal aborts first (the dial is cancelled).
 */
export function connectStream(datapath: StreamDatapath, remote: Endpoint, timeoutMs: number, signal: AbortSignal): Promise<StreamConn> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      dialing.cancel();
      reject(signal.reason as Error);
    };
    const dialing = datapath.dial(remote, timeoutMs, (err, conn) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(conn!);
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A dial that failed before it started: `done(err)` on the next microtask, as `dial` promises. */
export function failedDial<E extends Error>(err: E, done: (err: E) => void): DialInFlight {
  let live = true;
  queueMicrotask(() => live && done(err));
  return { cancel: () => void (live = false) };
}

export interface StreamListener {
  readonly local: Endpoint;
  /** Stops accepting; idempotent; resolves once the socket is released. Live connections stay. */
  close(): Promise<void>;
}

/** One TCP connection the datapath owns until `socket()` hands it over or `destroy()` ends it. */
export interface StreamConn {
  /** The peer, canonical (core/address.ts canonicalIp); undefined for a peer the kernel no longer names. */
  readonly remote: Endpoint | undefined;
  /** The address the peer reached, canonical. */
  readonly local: Endpoint;
  readonly destroyed: boolean;
  /** Bytes read from and written to this connection so far (a joined pair's are read from the datapath). */
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /**
   * Hands the connection to Node: a paused `net.Socket` with allowHalfOpen, for whatever is not a
   * joined pair of this datapath (a relay to an agent's tunnel stream, a bandwidth-paced relay).
   * Afterwards the datapath no longer owns it. Repeated calls return the same socket.
   */
  socket(): Socket;
  /** A dialed connection the datapath joined to its client at connect (DialJoin): `pipe` them, nothing else. */
  readonly joined?: boolean;
  /** Writes bytes before the connection is joined (a PROXY header); false when they did not all go out at once. */
  writeFirst(buf: Buffer): boolean;
  /** Idempotent. */
  destroy(): void;
  /**
   * Ends the connection with an RST instead of a FIN (a client whose bytes were taken by a dial that
   * then failed). One joined in the engine sends it when its pair is stopped: stop the pair next.
   */
  reset(): void;
  /**
   * TCP keepalive: probes after `idleS` quiet seconds, every `intervalS`, the connection ends after
   * `count` unanswered (a Node socket: the idle time only, the system's interval and count).
   */
  keepAlive?(idleS: number, intervalS: number, count: number): void;
}

/** Why a joined pair ended, and its counters; the reasons are a subset of the route's EndReason. */
export interface PairEnd extends PairCounters {
  readonly reason: 'client-closed' | 'upstream-closed' | 'idle-timeout' | 'client-error' | 'upstream-error';
  /** The system error code behind an error reason (ECONNRESET, EPIPE...). */
  readonly code?: string;
  /** pipeSealed with `keep`: both directions ended with END and the sealed connection is open, the caller's again. */
  readonly kept?: true;
}

export interface PairCounters {
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}
