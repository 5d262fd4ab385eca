import type { HostPort } from '../../core/address.js';
import type { Clock, Timer } from '../../core/clock.js';
import { SluiceError } from '../../core/errors.js';
import type { EventStream, SluiceEvent } from '../../observe/events.js';
import type { StreamDatapath } from '../../datapath/stream-datapath.js';
import type { DialedConn, SocketDialer } from '../direct/socket-dial.js';
import type { DialedStream, DialOptions, StreamDialer } from '../dialer.js';
import type { UpstreamPool } from './pool.js';
import type { PoolMember } from './pool-member.js';

/**
 * A route's StreamDialer over a pool: picks a member per connection and, when its dial fails,
 * ejects it (passive health) and tries the next member that takes sessions, all within the
 * route's connect timeout. The route's `upstream` target is ignored: the pool knows its members.
 *
 * A member counts a connection from its pick; the route's own `session-started`/`session-ended`
 * events (matched by route and upstream address) keep that count and the member's bytes after
 * the dial, so nothing wraps the connection (a native pair stays native).
 */
export class PoolStreamDialer implements StreamDialer, SocketDialer {
  /** Dialed connections by `ip:port` of the dialed address, oldest first. */
  readonly #live = new Map<string, Live>();
  readonly #unsubscribe: () => void;
  #sweep: Timer | undefined;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly clock: Clock,
    events: EventStream,
  ) {
    this.#unsubscribe = events.subscribe((e) => this.#onEvent(e));
  }

  dial(_target: HostPort, opts: DialOptions): Promise<DialedStream> {
    return this.#attempts(opts, (m, o) => {
      const dial = m.spec.ways.dial;
      if (!dial) throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `pool member ${m.spec.label} takes no TCP connections`);
      return dial(o);
    });
  }

  /** On the route's stream datapath when every member can be dialed there; else undefined (Node streams). */
  dialConn(_target: HostPort, opts: DialOptions, datapath: StreamDatapath): Promise<DialedConn> | undefined {
    if (!this.pool.allHave('dialConn')) return undefined;
    return this.#attempts(opts, (m, o) => m.spec.ways.dialConn!(o, datapath) ?? Promise.reject(new SluiceError('SLUICE_ERR_DIAL_FAILED', `pool member ${m.spec.label} cannot dial on the ${datapath.kind} datapath`)));
  }

  /** Stops following the route's events. */
  close(): void {
    this.#sweep?.cancel();
    this.#unsubscribe();
  }

  /** The first attempt without an async frame (one `then` per connection); retries in #retry. */
  #attempts<T extends { remote: { address: string; port: number } }>(opts: DialOptions, dial: (m: PoolMember, opts: DialOptions) => Promise<T>): Promise<T> {
    const started = this.clock.now();
    let m: PoolMember;
    try {
      m = this.pool.pick(opts.client);
    } catch (err) {
      return Promise.reject(err);
    }
    return dial(m, opts).then(
      (r) => {
        m.worked();
        this.#dialed(m, endpointKey(r.remote));
        return r;
      },
      (err: unknown) => {
        this.pool.release(m);
        if (opts.signal.aborted) throw err;
        this.pool.failed(m, 'dial-failed');
        return this.#retry(opts, dial, started, new Set([m]), err);
      },
    );
  }

  /** The next members that take sessions, within what is left of the connect timeout. */
  async #retry<T extends { remote: { address: string; port: number } }>(opts: DialOptions, dial: (m: PoolMember, opts: DialOptions) => Promise<T>, started: number, tried: Set<PoolMember>, last: unknown): Promise<T> {
    for (;;) {
      const left = opts.timeoutMs > 0 ? opts.timeoutMs - (this.clock.now() - started) : 0;
      if (opts.timeoutMs > 0 && left <= 0) throw last;
      let m: PoolMember;
      try {
        m = this.pool.pick(opts.client, tried);
      } catch {
        throw last;
      }
      try {
        const r = await dial(m, opts.timeoutMs <= 0 ? opts : { ...opts, timeoutMs: Math.max(1, Math.ceil(left)) });
        m.worked();
        this.#dialed(m, endpointKey(r.remote));
        return r;
      } catch (err) {
        this.pool.release(m);
        tried.add(m);
        last = err;
        if (opts.signal.aborted) throw err;
        this.pool.failed(m, 'dial-failed');
      }
    }
  }

  /**
   * The route starts a dialed connection in the same turn as the dial resolves (session-started),
   * or drops it there when its client left meanwhile. A sweep every STALE_MS releases those never
   * started, so a member's count never leaks (and nothing is scheduled per connection).
   */
  #dialed(m: PoolMember, key: string): void {
    let at = this.#live.get(key);
    if (!at) this.#live.set(key, (at = { pending: [], started: [] }));
    at.pending.push({ m, at: this.clock.now() });
    this.#sweep ??= this.clock.setInterval(() => this.#releaseStale(), STALE_MS);
  }

  #releaseStale(): void {
    const old = this.clock.now() - STALE_MS;
    let left = 0;
    for (const [key, at] of this.#live) {
      while (at.pending.length > 0 && at.pending[0]!.at <= old) this.pool.release(at.pending.shift()!.m);
      left += at.pending.length;
      this.#tidy(key, at);
    }
    if (left === 0) {
      this.#sweep?.cancel();
      this.#sweep = undefined;
    }
  }

  #tidy(key: string, at: Live): void {
    if (at.pending.length === 0 && at.started.length === 0 && this.#live.get(key) === at) this.#live.delete(key);
  }

  #onEvent(e: SluiceEvent): void {
    if (e.type !== 'session-started' && e.type !== 'session-ended') return;
    if (e.flow.route !== this.pool.route || e.flow.proto !== 'tcp' || !e.upstream) return;
    const key = endpointKey(e.upstream);
    const at = this.#live.get(key);
    if (!at) return;
    if (e.type === 'session-started') {
      const d = at.pending.shift();
      if (!d) return;
      d.m.sessions++;
      at.started.push(d.m);
      return;
    }
    const m = at.started.shift();
    if (!m) return;
    m.bytesFromClient += e.counters.bytesFromClient;
    m.bytesToClient += e.counters.bytesToClient;
    this.pool.release(m);
    this.#tidy(key, at);
  }
}

/** The dialed address as the dial returned it and the route's events carry it (already canonical). */
const endpointKey = (e: { address: string; port: number }): string => `${e.address}|${e.port}`;

interface Live {
  /** Dialed, not started yet (the route's turn has not run). */
  readonly pending: Dialed[];
  /** Started and not ended, oldest first. */
  readonly started: PoolMember[];
}

interface Dialed {
  readonly m: PoolMember;
  /** When the dial resolved (clock ms). */
  readonly at: number;
}

/** A dialed connection not started by the route within this long was dropped by it (its client left). */
const STALE_MS = 1000;
