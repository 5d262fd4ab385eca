import type { Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { DialInFlight, StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';
import { guardPooledConn, POOLED_MAX_IDLE_MS } from '../datapath/pooled-conn.js';
import { encodeDataHello, exportDataKeys, exportDataToken, type DataKeys, type TlsSessionLike } from '../protocol/tunnel/index.js';

/** A data connection that wrote its hello and waits for the gateway to name it in a STREAM_OPEN. */
export interface AgentDataConn {
  readonly conn: StreamConn;
  readonly keys: DataKeys;
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
}

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * The agent's idle data connections to one gateway, for one control connection (docs/tunnel-protocol.md,
 * "Data connections"): dialed on the stream datapath to the address the control connection reached,
 * each with a new counter and its hello written first; refilled as the gateway uses them; a failed
 * dial waits (doubling from 0.5 s to 30 s) before the next. Idle ones keep TCP keepalive on and are
 * replaced when they turn readable (dead) or reach their maximum idle age (pooled-conn.ts). Closed
 * with the control connection.
 */
export class DataConnPool {
  readonly #idle = new Map<number, AgentDataConn>();
  readonly #dials = new Set<DialInFlight>();
  /** Each idle connection's guard (keepalive, dead-while-idle watch, maximum idle age). */
  readonly #guards = new Map<number, () => void>();
  readonly #token: Buffer;
  #next = 1;
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
    this.fill();
    return d && !d.conn.destroyed ? d : undefined;
  }

  /** Dials until idle plus dialing reach the pool's size (unless waiting after a failure). */
  fill(): void {
    while (!this.#closed && this.#retry === undefined && this.#idle.size + this.#dials.size < this.o.size) this.#dial();
  }

  #dial(): void {
    const counter = this.#next++;
    const keys = exportDataKeys(this.o.tls, counter, 'agent');
    const dialing = this.o.datapath.dial(this.o.gateway, this.o.dialTimeoutMs, (err, conn) => {
      this.#dials.delete(dialing);
      if (this.#closed) return conn?.destroy();
      if (err || !conn!.writeFirst(encodeDataHello(this.#token, counter, keys.sealKey, keys.sealIv))) {
        conn?.destroy();
        const wait = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(this.#failures++, 10));
        this.#retry ??= this.o.clock.setTimeout(() => {
          this.#retry = undefined;
          this.fill();
        }, wait);
        return;
      }
      this.#failures = 0;
      this.#idle.set(counter, { conn: conn!, keys });
      // Dead while idle (the gateway closed it, a reset) or too old: closed and replaced.
      this.#guards.set(counter, guardPooledConn(conn!, this.o.clock, () => {
        this.#guards.delete(counter);
        this.#idle.delete(counter);
        conn!.destroy();
        this.fill();
      }, POOLED_MAX_IDLE_MS));
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
