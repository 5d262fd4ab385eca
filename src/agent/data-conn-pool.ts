import type { Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { DialInFlight, StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';
import { guardPooledConn, POOLED_MAX_IDLE_MS } from '../datapath/pooled-conn.js';
import { encodeDataHello, exportDataKeys, exportDataToken, type DataKeys, type TlsSessionLike } from '../protocol/tunnel/index.js';

/** A data connection that wrote its hello and waits for the gateway to name it in a STREAM_OPEN. */
export interface AgentDataConn {
  readonly conn: StreamConn;
  readonly keys: DataKeys;
  /**
   * Set on a connection `take` gave out: call once when its stream is over. `kept` (the pair ended
   * with END both ways and kept the connection open) puts it back under a new counter and hello
   * (docs/tunnel-protocol.md, "Reuse"); otherwise it is closed.
   */
  readonly back?: (kept: boolean) => void;
}

export interface DataConnPoolOptions {
  readonly datapath: StreamDatapath;
  /** The address the control connection reached. */
  readonly gateway: Endpoint;
  /** The control connection's TLS session: the token and each counter's keys come from it. */
  readonly tls: TlsSessionLike;
  /** Idle connections to keep (agent.dataConnections). */
  readonly size: number;
  readonly clock: Clock;
  readonly dialTimeoutMs: number;
  /** The control connection's counter sequence, shared with its trunks (trunk-pool.ts); the pool's own otherwise. */
  readonly counter?: { next(): number };
}

const RETRY_FIRST_MS = 500;
/**
 * Dials in flight at once: a pool of 64 dialed in one burst would pass the gateway's pre-auth cap per
 * source (maxHandshakesPerSource, 16 by default) and have most of its connections closed there,
 * unseen by the pool until its control connection ends.
 */
const MAX_DIALS = 4;
const RETRY_MAX_MS = 30_000;

/**
 * The agent's idle data connections to one gateway, for one control connection (docs/tunnel-protocol.md,
 * "Data connections"): dialed on the stream datapath to the address the control connection reached,
 * each with a new counter and its hello written first; refilled as the gateway uses them; a failed
 * dial waits (doubling from 0.5 s to 30 s) before the next. A stream that ended cleanly gives its
 * connection back under a new counter and hello. Idle ones keep TCP keepalive on and are replaced
 * when they turn readable (dead) or reach their maximum idle age (pooled-conn.ts). Closed with the
 * control connection.
 */
export class DataConnPool {
  readonly #idle = new Map<number, AgentDataConn>();
  readonly #dials = new Set<DialInFlight>();
  /** Each idle connection's guard (keepalive, dead-while-idle watch, maximum idle age). */
  readonly #guards = new Map<number, () => void>();
  readonly #token: Buffer;
  #next = 1;
  /** Connections given out whose streams run: they count toward the size while they may come back. */
  #busy = 0;
  /** Connections that came back from a stream and carried another (for metrics and tests). */
  reused = 0;
  #failures = 0;
  #retry: Timer | undefined;
  #closed = false;

  constructor(private readonly o: DataConnPoolOptions) {
    this.#token = exportDataToken(o.tls);
    this.fill();
  }

  get idle(): number {
    return this.#idle.size;
  }

  /** The idle connection the gateway named; undefined when it is not (or no longer) here. Refills. */
  take(counter: number): AgentDataConn | undefined {
    const d = this.#idle.get(counter);
    this.#idle.delete(counter);
    this.#guards.get(counter)?.();
    this.#guards.delete(counter);
    const given = d && !d.conn.destroyed ? givenOut(d, (kept) => this.#back(d.conn, kept)) : undefined;
    if (given) this.#busy++;
    this.fill();
    return given;
  }

  /**
   * Dials until idle, dialing and busy connections (those that may come back: with reuse) reach the
   * pool's size, with at least half of it idle or dialing whatever the busy ones (long streams do
   * not starve new ones), unless waiting after a failure.
   */
  fill(): void {
    const want = Math.max(Math.ceil(this.o.size / 2), this.o.size - this.#busy);
    while (!this.#closed && this.#retry === undefined && this.#dials.size < MAX_DIALS && this.#idle.size + this.#dials.size < want) this.#dial();
  }

  /** A given-out connection's stream is over: idle again under a new counter, or closed (docs/tunnel-protocol.md "Reuse"). */
  #back(conn: StreamConn, kept: boolean): void {
    this.#busy--;
    if (kept && !this.#closed && !conn.destroyed && this.#idle.size < this.o.size && this.#hello(conn)) this.reused++;
    else conn.destroy();
    this.fill();
  }

  /** Writes a hello under the next counter on `conn` and keeps it idle; false when it could not. */
  #hello(conn: StreamConn): boolean {
    const counter = this.o.counter?.next() ?? this.#next++;
    let keys: DataKeys;
    try {
      keys = exportDataKeys(this.o.tls, counter, 'agent');
    } catch {
      return false; // the control connection is closing
    }
    // Idle before the hello leaves: the gateway may name the counter as soon as it reads it.
    this.#idle.set(counter, { conn, keys });
    if (!conn.writeFirst(encodeDataHello(this.#token, counter, keys.sealKey, keys.sealIv))) {
      this.#idle.delete(counter);
      return false;
    }
    // Dead while idle (the gateway closed it, a reset) or too old: closed and replaced.
    this.#guards.set(counter, guardPooledConn(conn, this.o.clock, () => {
      this.#guards.delete(counter);
      this.#idle.delete(counter);
      conn.destroy();
      this.fill();
    }, POOLED_MAX_IDLE_MS));
    return true;
  }

  #dial(): void {
    const dialing = this.o.datapath.dial(this.o.gateway, this.o.dialTimeoutMs, (err, conn) => {
      this.#dials.delete(dialing);
      if (this.#closed) return conn?.destroy();
      if (err || !this.#hello(conn!)) {
        conn?.destroy();
        const wait = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(this.#failures++, 10));
        this.#retry ??= this.o.clock.setTimeout(() => {
          this.#retry = undefined;
          this.fill();
        }, wait);
        return;
      }
      this.#failures = 0;
      this.fill();
    });
    this.#dials.add(dialing);
  }

  /** Closes the idle connections and stops dialing. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#retry?.cancel();
    for (const d of this.#dials) d.cancel();
    this.#dials.clear();
    for (const release of this.#guards.values()) release();
    this.#guards.clear();
    for (const d of this.#idle.values()) d.conn.destroy();
    this.#idle.clear();
  }
}

/** `d` as given out by `take`, with its once-only `back`. */
function givenOut(d: AgentDataConn, back: (kept: boolean) => void): AgentDataConn {
  let over = false;
  return {
    conn: d.conn,
    keys: d.keys,
    back: (kept) => {
      if (over) return;
      over = true;
      back(kept);
    },
  };
}
