import { MAX_WINDOW_BYTES } from './constants.js';
import { TunnelError } from './errors.js';

/**
 * Per-stream credit-based flow control (docs/tunnel-protocol.md, "Flow control"), as in HTTP/2
 * (RFC 9113 §5.2) and yamux: each receiver grants every stream an initial window (announced once,
 * in HELLO or AUTH_OK), the sender spends credit with STREAM_DATA and may send only while it has
 * some, and the receiver returns credit with WINDOW_UPDATE as its application consumes data.
 *
 * There is no connection-level window: the receiver must never stop reading the TLS connection
 * (it can always buffer what it granted), so one stalled stream never blocks the others, and its
 * memory is bounded by open streams x window. TCP below provides connection-level backpressure.
 */

/** The sender's credit on one stream. */
export class SendWindow {
  #available: number;

  constructor(initial: number) {
    checkWindow(initial, 'initial window');
    this.#available = initial;
  }

  /** Bytes that may be sent now. */
  get available(): number {
    return this.#available;
  }

  /** Spends credit for `bytes` about to be sent; sending more than `available` is a caller bug. */
  consume(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > this.#available) {
      throw new TunnelError('bad-value', `cannot send ${bytes} bytes with ${this.#available} bytes of credit`);
    }
    this.#available -= bytes;
  }

  /**
   * Adds a WINDOW_UPDATE increment. Returns false when the credit would exceed 2^31-1, which is a
   * flow-control error by the peer (RFC 9113 §6.9.1): reset the stream with 'flow-control'.
   */
  grant(increment: number): boolean {
    if (!Number.isInteger(increment) || increment < 1 || this.#available + increment > MAX_WINDOW_BYTES) return false;
    this.#available += increment;
    return true;
  }
}

/** The receiver's side of one stream: what it granted, what arrived, what it has given back. */
export class ReceiveWindow {
  readonly #initial: number;
  readonly #threshold: number;
  /** Credit the sender still has, as far as this end knows. */
  #granted: number;
  /** Bytes consumed by the application and not yet returned with WINDOW_UPDATE. */
  #pending = 0;

  /**
   * `updateThreshold`: return credit once at least this many bytes are pending (default half the
   * window, as yamux does), so a stream sends one WINDOW_UPDATE per half window, not per chunk.
   */
  constructor(initial: number, opts: { updateThreshold?: number } = {}) {
    checkWindow(initial, 'initial window');
    this.#initial = initial;
    this.#granted = initial;
    this.#threshold = Math.max(1, Math.min(initial, opts.updateThreshold ?? Math.ceil(initial / 2)));
  }

  /** Bytes the sender may still send. */
  get granted(): number {
    return this.#granted;
  }

  /** Bytes received and not yet consumed, that is, what this end must be buffering. */
  get buffered(): number {
    return this.#initial - this.#granted - this.#pending;
  }

  /** STREAM_DATA arrived. False when it exceeds the credit: reset the stream with 'flow-control'. */
  receive(bytes: number): boolean {
    if (bytes > this.#granted) return false;
    this.#granted -= bytes;
    return true;
  }

  /**
   * The application consumed `bytes` (written to the local socket and that write drained). Returns
   * the WINDOW_UPDATE increment to send now, or 0 to wait for more.
   */
  release(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > this.buffered) {
      throw new TunnelError('bad-value', `cannot release ${bytes} bytes with ${this.buffered} buffered`);
    }
    this.#pending += bytes;
    if (this.#pending < this.#threshold) return 0;
    const inc = this.#pending;
    this.#pending = 0;
    this.#granted += inc;
    return inc;
  }
}

function checkWindow(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1 || v > MAX_WINDOW_BYTES) throw new TunnelError('bad-value', `${what} ${v} is not in 1-${MAX_WINDOW_BYTES}`);
}
