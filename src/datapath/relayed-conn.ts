/**
 * A plain connection of a stream datapath whose bytes JavaScript carries without a Node socket (the
 * end of a multiplexed tunnel stream): the datapath reads it when readable and hands each read's
 * bytes over, writes without blocking (what the socket does not take now is held and reported as
 * it leaves), and reports the FIN, an error or the idle timeout once each.
 */
export interface RelayedConn {
  /** Bytes read off the connection so far, and bytes written to it (that left). */
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /**
   * Writes `buf` (its bytes are copied): returns how many of them the datapath holds to send once
   * the socket is writable (`drained` tells as they leave), or -errno when the connection failed.
   */
  write(buf: Buffer): number;
  /** Sends the FIN. Call once nothing is held. */
  end(): void;
  /** Stops or restarts reading (the consumer cannot take more now). */
  pause(paused: boolean): void;
  /** Closes with an RST instead of a FIN. Idempotent with close. */
  reset(): void;
  /** Closes the connection (held bytes are dropped); no event follows. Idempotent. */
  close(): void;
}

/** What a relayed connection reports, on the datapath's batches of events. */
export interface RelayedConnEvents {
  /** One read's bytes; the buffer is the callee's. */
  data(chunk: Buffer): void;
  /** The peer's FIN: no more data. */
  fin(): void;
  /** A reset or a failed read or write (ECONNRESET, EPIPE...): the relay must end. Reported once. */
  error(code: string): void;
  /** `bytes` of the held bytes left. */
  drained(bytes: number): void;
  /** No byte either way for the idle timeout. */
  idle(): void;
}
