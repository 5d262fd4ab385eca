import type { HostPort } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
import { SluiceError } from '../../core/errors.js';
import type { EventStream, SluiceEvent } from '../../observe/events.js';
import type { StreamDatapath } from '../../datapath/stream-datapath.js';
import type { DialedConn, SocketDialer } from '../direct/socket-dial.js';
import type { DialedStream, DialOptions, StreamDialer } from '../dialer.js';
import { memberKeyOf, type UpstreamPool } from './pool.js';
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
    if (this.pool.members().some((m) => !m.spec.ways.dialConn)) return undefined;
    return this.#attempts(opts, (m, o) => m.spec.ways.dialConn!(o, datapath) ?? Promise.reject(new SluiceError('SLUICE_ERR_DIAL_FAILED', `pool member ${m.spec.label} cannot dial on the ${datapath.kind} datapath`)));
  }

  /** Stops following the route's events. */
  close(): void {
    this.#unsubscribe();
  }

  async #attempts<T extends { remote: { address: string; port: number } }>(opts: DialOptions, dial: (m: PoolMember, opts: DialOptions) => Promise<T>): Promise<T> {
    const started = this.clock.now();
    const tried = new Set<PoolMember>();
    let last: unknown;
    for (;;) {
      const left = opts.timeoutMs > 0 ? opts.timeoutMs - (this.clock.now() - started) : 0;
      if (tried.size > 0 && (opts.timeoutMs > 0 && left <= 0)) throw last;
      let m: PoolMember;
      try {
        m = this.pool.pick(opts.client, tried);
      } catch (err) {
        throw tried.size > 0 ? last : err;
      }
      tried.add(m);
      try {
        const r = await dial(m, opts.timeoutMs > 0 ? { ...opts, timeoutMs: Math.max(1, Math.ceil(left)) } : opts);
        m.worked();
        this.#dialed(m, memberKeyOf(r.remote));
        return r;
      } catch (err) {
        this.pool.release(m);
        last = err;
        if (opts.signal.aborted) throw err;
        this.pool.failed(m, 'dial-failed');
      }
    }
  }

  /**
   * The route starts a dialed connection in the same turn as the dial resolves (session-started),
   * or drops it there when its client left meanwhile; one not started by the next macrotask is
   * released here, so a member's count never leaks.
   */
  #dialed(m: PoolMember, key: string): void {
    let at = this.#live.get(key);
    if (!at) this.#live.set(key, (at = { pending: [], started: [] }));
    const d: Dialed = { m, started: false };
    at.pending.push(d);
    setImmediate(() => {
      if (d.started) return;
      const i = at.pending.indexOf(d);
      if (i >= 0) at.pending.splice(i, 1);
      this.pool.release(m);
      this.#tidy(key, at);
    });
  }

  #tidy(key: string, at: Live): void {
    if (at.pending.length === 0 && at.started.length === 0 && this.#live.get(key) === at) this.#live.delete(key);
  }

  #onEvent(e: SluiceEvent): void {
    if (e.type !== 'session-started' && e.type !== 'session-ended') return;
    if (e.flow.route !== this.pool.route || e.flow.proto !== 'tcp' || !e.upstream) return;
    const key = memberKeyOf(e.upstream);
    const at = this.#live.get(key);
    if (!at) return;
    if (e.type === 'session-started') {
      const d = at.pending.shift();
      if (!d) return;
      d.started = true;
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

interface Live {
  /** Dialed, not started yet (the route's turn has not run). */
  readonly pending: Dialed[];
  /** Started and not ended, oldest first. */
  readonly started: PoolMember[];
}

interface Dialed {
  readonly m: PoolMember;
  started: boolean;
}
