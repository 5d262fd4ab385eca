import type { Clock } from '../core/clock.js';
import { LISTENER_RCVBUF_BYTES } from '../datapath/socket-buffers.js';
import type { EventStream } from '../observe/events.js';
import type { IsolatedSocket, UdpSender } from '../datapath/udp-datapath.js';
import type { UdpSession } from '../session/udp-session.js';
import type { LiveSessions } from '../session/udp-client-side.js';

/**
 * Receive buffer of a client's own socket when it is made, as asked of the kernel (which doubles
 * it for its bookkeeping, and caps it at net.core.rmem_max): the listener's (socket-buffers.ts,
 * 1 MiB), so a paced 10-40k/s client the process keeps up with rides out a stall of the loop as it
 * did on the listener. FLOOD_RCVBUF_BYTES (as first built) lost such a client's datagrams at its
 * own socket in paced sweeps at 10k/s on a loaded machine (700-1,800 of 30,000) where the
 * listener's size lost none. Neither the rate nor a backlog in the batch tells a fast paced client
 * from a flood; what it does at its own socket does (FLOOD_RCVBUF_BYTES).
 */
export const ISOLATED_RCVBUF_BYTES = LISTENER_RCVBUF_BYTES;

/**
 * Receive buffer of a flooder's own socket, set at the first sweep that finds it sending more
 * than twice what is read from it (its socket's kernel drops in a sweep above what was read).
 * 128 KiB, 256 KiB accounted, about
 * 300 datagrams of 64 B: what it sends beyond what the process reads is dropped here, early. With
 * the listener's size its backlog after each stall of the process went on to the service in
 * bursts, which the service's own queue (shared with every other client) then had to absorb: a
 * second client's p50 under udpload's flood measured 18-97 ms against 12 ms with this size.
 */
export const FLOOD_RCVBUF_BYTES = 128 * 1024;

/**
 * Datagrams of one source, read after read each filling the listener's share of the batch, after
 * which the datapath names it (UdpDatapath.watchSources) and it gets its own socket at once,
 * before the sweep: a flood is moved within a few batches instead of filling the shared queue for
 * up to a sweep. A backlog this long from one client means it sends faster than the process reads.
 */
export const HEAVY_DATAGRAMS = 256;

/** The least age (ms) over which a new session's rate is judged when the batch names it. */
const HEAVY_MIN_MS = 20;

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
  /** Its receive buffer is FLOOD_RCVBUF_BYTES (else ISOLATED_RCVBUF_BYTES). */
  flood: boolean;
  calm: number;
  /** The socket's kernel drops when last read, and how many of them were its send budget's. */
  drops: number;
  budgetDrops: number;
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
  /** The sweep interval, as the last sweep said (the table's default until then). */
  #sweepMs = 250;

  constructor(
    private readonly isolate: (address: string, port: number, rcvbufBytes: number) => IsolatedSocket,
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
    this.#sweepMs = sweepMs;
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
          if (above > 0 && n > limit && s.state === 'open' && this.#own.size < MAX_ISOLATED_PER_LISTENER && !this.#failed.has(s)) this.#isolate(s, 'over-rate');
        } else {
          const dropped = this.#readDrops(own);
          // Sending more than twice what is read: a flood after all, its excess dropped early.
          if (!own.flood && dropped > n && own.socket.receiveBuffer?.(FLOOD_RCVBUF_BYTES)) own.flood = true;
          own.calm = above > 0 && n < limit / 2 && dropped === 0 ? own.calm + 1 : 0;
          if (above === 0 || own.calm >= CALM_SWEEPS) this.#release(s, own, 'calm');
        }
      });
    }
    this.#flushDrops();
  }

  /**
   * The datapath saw `s`'s client fill the listener's share of the batch again and again
   * (HEAVY_DATAGRAMS, counts folded): isolated now, reason `heavy-source`, on the sweep's
   * conditions, the rate too, as far as it is known already: for a session that began since the
   * last sweep, more than `isolateAbove` a second over its life so far (at least HEAVY_MIN_MS: a
   * new flood is moved within milliseconds), else more than a sweep's worth since the last sweep
   * (a flood, read at the process's pace, gets there in a few tens of ms). A backlog alone is not
   * enough: after a stall of the process a light client's queued datagrams fill the listener's
   * share too, and a socket of its own would put it last in the batch, with floods.
   */
  heavy(s: UdpSession): void {
    const above = this.#unsupported ? 0 : this.above();
    if (above <= 0 || this.#own.has(s)) return;
    if (s.state !== 'open' || this.#own.size >= MAX_ISOLATED_PER_LISTENER || this.#failed.has(s)) return;
    const before = this.#seen.get(s);
    const age = this.report.clock.now() - s.startedAt;
    const over =
      before !== undefined ? s.packetsFromClient - before > (above * this.#sweepMs) / 1000
      : age <= this.#sweepMs && s.packetsFromClient > (above * Math.max(age, HEAVY_MIN_MS)) / 1000;
    if (!over) return;
    this.#isolate(s, 'heavy-source');
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

  #isolate(s: UdpSession, reason: 'over-rate' | 'heavy-source'): void {
    let socket: IsolatedSocket;
    try {
      socket = this.isolate(s.replyAddress, s.replyPort, ISOLATED_RCVBUF_BYTES);
    } catch (err) {
      this.#failed.add(s);
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ENOTSUP') this.#unsupported = true;
      this.#event(s, 'failed', code);
      return;
    }
    this.#own.set(s, { socket, flood: false, calm: 0, drops: 0, budgetDrops: 0 });
    // The batch's entries for it match on the listener's socket: handed over again, on the new one.
    s.offload?.close();
    this.#event(s, 'isolated', reason);
  }

  #release(s: UdpSession, own: Own, reason: 'calm' | 'session-ended' | 'route-closed'): void {
    this.#readDrops(own);
    this.#own.delete(s);
    s.offload?.close();
    void own.socket.close();
    this.#event(s, 'released', reason);
  }

  /**
   * Kernel drops at `own`'s socket since the last read. Those made while the batch left the socket
   * unread for the session's send budget are counted by the budget's reasons (native/src/park.cc),
   * the rest reported here as `isolated-kernel`; all of them tell a flood (the caller's shrink).
   */
  #readDrops(own: Own): number {
    const b = own.socket.budgetDrops?.() ?? 0;  // first: it settles up to now, the kernel's count below includes them
    const d = own.socket.kernelDrops();
    if (d < 0) return 0;
    const n = d - own.drops;
    own.drops = d;
    this.#dropped += Math.max(0, n - (b - own.budgetDrops));
    own.budgetDrops = b;
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
