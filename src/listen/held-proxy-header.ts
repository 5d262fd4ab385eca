import type { Clock, Timer } from '../core/clock.js';
import { tryDecodeHeader, type HeaderOutcome } from './proxy-header-reader.js';

/**
 * A connection the stream datapath still holds (accepted, not joined) whose first bytes the
 * route may read itself (datapath/native: NativeConn). Bytes read past what the route consumed
 * go into `unread`, and the datapath relays them before anything else.
 */
export interface HeldConn {
  readonly destroyed: boolean;
  unread: Buffer | undefined;
  /** Resolves when there is something to read (bytes, FIN, error) or the connection is gone. */
  readable(): Promise<void>;
  /** Bytes read into `buf`, 0 at EOF, or -errno (-EAGAIN: nothing yet). */
  read(buf: Buffer): number;
}

export function isHeldConn(conn: object): conn is HeldConn {
  const c = conn as Partial<HeldConn>;
  return typeof c.read === 'function' && typeof c.readable === 'function';
}

const EAGAIN = -11;

/**
 * readProxyHeader for a held connection: the same decoder, deadline and size bound, reading
 * straight from the socket before the datapath joins it. What followed the header is left in
 * `conn.unread`.
 */
export async function readHeldProxyHeader(conn: HeldConn, clock: Clock, timeoutMs: number, maxBytes: number): Promise<HeaderOutcome> {
  const chunk = Buffer.allocUnsafe(maxBytes + 1);
  let buf: Buffer = Buffer.alloc(0);
  let timer: Timer | undefined;
  let timedOut = false;
  const deadline = new Promise<void>((resolve) => (timer = clock.setTimeout(() => resolve(void (timedOut = true)), timeoutMs)));
  try {
    for (;;) {
      const n = conn.read(chunk);
      if (n === EAGAIN && !conn.destroyed) {
        await Promise.race([conn.readable(), deadline]);
        if (timedOut) return { ok: false, reason: buf.length === 0 ? 'proxy-header-missing' : 'proxy-header-invalid' };
        continue;
      }
      const final = n <= 0;
      if (n > 0) buf = buf.length === 0 ? Buffer.from(chunk.subarray(0, n)) : Buffer.concat([buf, chunk.subarray(0, n)]);
      const d = tryDecodeHeader(buf, maxBytes, final);
      if (d) {
        if (d.outcome.ok && buf.length > d.length) conn.unread = buf.subarray(d.length);
        return d.outcome;
      }
      if (final) return { ok: false, reason: buf.length === 0 ? 'proxy-header-missing' : 'proxy-header-invalid' };
    }
  } finally {
    timer?.cancel();
  }
}
