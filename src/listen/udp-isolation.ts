import type { Clock } from '../core/clock.js';
import type { EventStream } from '../observe/events.js';
import type { IsolatedSocket, UdpSender } from '../datapath/udp-datapath.js';
import type { UdpSession } from '../session/udp-session.js';
import type { LiveSessions } from '../session/udp-client-side.js';

/**
 * Receive buffer of a client's own socket, as asked of the kernel (which doubles it for its
 * bookkeeping, and caps it at net.core.rmem_max): 128 KiB, 256 KiB accounted, about 300
 * datagrams of 64 B on loopback, or 20-30 ms of a client at 10-15k/s. Smaller than a listener's
 * (socket-buffers.ts): this queue holds one client that sends more than `isolateAbove`, and what
 * it sends beyond what the process reads should be dropped here, early, not queued for later.
 */
export const ISOLATED_RCVBUF_BYTES = 128 * 1024;

/** At most this many clients of one listener have a socket of their own (one descriptor each). */
export const MAX_ISOLATED_PER_LISTENER = 64;

/**
 * Sweeps in a row below half of `isolateAbove`, with no kernel drop at its socket, after which a
 * client's own socket is closed and it shares the listener again (hysteresis: a client near the
 * threshold does not flap between the two).
 */
const CALM_SWEEPS = 8;

interface Own {
  readonly socket: IsolatedSocket;
  calm: number;
  /** The socket's kernel drops when last read. */
  drops: number;
}

/**
 * The clients of a route's listener, where a client that sends more than `isolateAbove`
 * datagrams a second gets a socket of its own (UdpDatapath.isolate; docs/expose.md, "A flooding
 * client's own socket"). The kernel then queues its datagrams apart from every other client's,
 * and drops what it sends beyond what the process reads there, in its own queue, before the
 * shared one fills; the engine reads each ready socket's share per batch, so the others are read
 * as promptly as before. Its datagrams reach the same session table, by the same client address;
 * replies leave from the listener's address and port as before (the native batch sends an
 * offloaded session's from its own socket: same address, same port).
 *
 * Decided on the sweep, never per datagram: the datagrams each session sent since the last sweep
 * (what the native batch forwarded folded in) over the sweep interval. The socket goes when the
 * session ends, or after CALM_SWEEPS quiet sweeps. Reported as `udp-isolation` events, and the
 * kernel's drops at these sockets as `datagrams-dropped` with reason `isolated-kernel`.
 */
export class ClientIsolation {
  readonly #own = new Map<UdpSession, Own>();
  /** packetsFromClient at the last sweep, of the sessions active since the one before. */
  readonly #seen = new Map<UdpSession, number>();
  /** Sessions whose isolation failed (reported once; not tried again). */
  readonly #failed = new WeakSet<UdpSession>();
  /** The datapath cannot do it at all (an addon built before isolate()): not tried again. */
  #unsupported = false;
  #dropped = 0;

  constructor(
    private readonly isolate: (address: string, port: number) => IsolatedSocket,
    /** Datagrams a second from one client above which it gets its own socket. */
    private readonly above: () => number,
    private readonly report: { readonly events: EventStream; readonly clock: Clock; readonly route: string },
  ) {}

  /** Clients with a socket of their own now. */
  get isolated(): number {
    return this.#own.size;
  }

  /** The socket `s`'s client has of its own, if it has one. */
  socketOf(s: UdpSession): UdpSender | undefined {
    return this.#own.size === 0 ? undefined : this.#own.get(s)?.socket;
  }

  /** The table swept (counts folded): isolates the sessions over the rate, releases calm ones, reports the kernel's drops. */
  swept(live: LiveSessions, sweepMs: number, tick: number): void {
    const above = this.#unsupported ? 0 : this.above();
    const limit = (above * sweepMs) / 1000;
    const seen = this.#seen;
    if (above > 0 || this.#own.size > 0) {
      live.forEach((s) => {
        if (tick - s.lastTick > 1 && !this.#own.has(s)) {
          seen.delete(s);
          return;
        }
        const now = s.packetsFromClient;
        // A session first seen: counted from 0 if it began within this sweep (a flood is isolated
        // one sweep after it starts, not two), else from here on.
        const before = seen.get(s) ?? (this.report.clock.now() - s.startedAt <= sweepMs ? 0 : undefined);
        seen.set(s, now);
        if (before === undefined) return;
        const n = now - before;
        const own = this.#own.get(s);
        if (own === undefined) {
          if (above > 0 && n > limit && s.state === 'open' && this.#own.size < MAX_ISOLATED_PER_LISTENER && !this.#failed.has(s)) this.#isolate(s);
        } else {
          const dropped = this.#readDrops(own);
          own.calm = above > 0 && n < limit / 2 && dropped === 0 ? own.calm + 1 : 0;
          if (above === 0 || own.calm >= CALM_SWEEPS) this.#release(s, own, 'calm');
        }
      });
    }
    this.#flushDrops();
  }

  /** `s` ended: its socket goes. */
  ended(s: UdpSession): void {
    this.#seen.delete(s);
    const own = this.#own.get(s);
    if (own !== undefined) {
      this.#release(s, own, 'session-ended');
      this.#flushDrops();
    }
  }

  /** The route closed: every client's own socket too (idempotent). */
  closeAll(): void {
    for (const [s, own] of [...this.#own]) this.#release(s, own, 'route-closed');
    this.#seen.clear();
    this.#flushDrops();
  }

  #isolate(s: UdpSession): void {
    let socket: IsolatedSocket;
    try {
      socket = this.isolate(s.replyAddress, s.replyPort);
    } catch (err) {
      this.#failed.add(s);
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ENOTSUP') this.#unsupported = true;
      this.#event(s, 'failed', code);
      return;
    }
    this.#own.set(s, { socket, calm: 0, drops: 0 });
    // The batch's entries for it match on the listener's socket: handed over again, on the new one.
    s.offload?.close();
    this.#event(s, 'isolated', 'over-rate');
  }

  #release(s: UdpSession, own: Own, reason: 'calm' | 'session-ended' | 'route-closed'): void {
    this.#readDrops(own);
    this.#own.delete(s);
    s.offload?.close();
    void own.socket.close();
    this.#event(s, 'released', reason);
  }

  /** Kernel drops at `own`'s socket since the last read (added to the next report). */
  #readDrops(own: Own): number {
    const d = own.socket.kernelDrops();
    if (d < 0) return 0;
    const n = d - own.drops;
    own.drops = d;
    this.#dropped += n;
    return n;
  }

  #flushDrops(): void {
    const count = this.#dropped;
    if (count === 0) return;
    this.#dropped = 0;
    const { events, clock, route } = this.report;
    events.emit({ type: 'datagrams-dropped', at: clock.wallNow(), route, reason: 'isolated-kernel', count });
  }

  #event(s: UdpSession, change: 'isolated' | 'released' | 'failed', reason: string): void {
    const { events, clock, route } = this.report;
    events.emit({ type: 'udp-isolation', at: clock.wallNow(), route, client: s.client, change, reason });
  }
}
