import type { Clock } from '../core/clock.js';
import { guardPooledConn } from '../datapath/pooled-conn.js';
import type { StreamConn } from '../datapath/stream-datapath.js';
import {
  exportDataKeys, isTrunkHello, readDataHello, readTrunkHello, ReplayWindow, verifyDataHello, type DataKeys, type TlsSessionLike,
} from '../protocol/tunnel/index.js';
import type { LinkTrunks } from './trunks.js';

/** Why a data connection was not kept (counted by the gateway, docs/metrics.md). */
export type DataConnRefusal = 'bad-hello' | 'unknown-token' | 'replayed' | 'forged' | 'timeout' | 'pool-full';

/** An authenticated data connection waiting for a stream. */
export interface IdleDataConn {
  readonly counter: number;
  readonly conn: StreamConn;
  readonly keys: DataKeys;
}

/** Idle data connections one control connection may hold at the gateway; more are closed. */
export const MAX_IDLE_DATA_CONNS = 64;

/**
 * The data connections of one control connection (docs/tunnel-protocol.md, "Data connections"):
 * a hello names its token; its counter must be new (RFC 6479 window, checked before any crypto,
 * marked only once the HELLO record opened under that counter's key, which is what authenticates
 * the connection); then it waits, idle, for a stream. Closed with its control connection.
 */
export class LinkDataConns {
  readonly #idle: IdleDataConn[] = [];
  readonly #window = new ReplayWindow();
  /** Each idle connection's guard (keepalive, dead-while-idle watch). */
  readonly #guards = new Map<IdleDataConn, () => void>();
  #closed = false;
  /** Connections back from a clean stream, their next hello not read yet (data-conn-return.ts); closed with the rest. */
  readonly returning = new Set<StreamConn>();
  /** This control connection's trunks, when both ends have them (trunks.ts): a trunk hello goes there. */
  trunks: LinkTrunks | undefined;

  constructor(
    readonly token: Buffer,
    private readonly tls: TlsSessionLike,
    private readonly max: number,
    /** Times each idle connection's guard. */
    private readonly clock: Clock,
  ) {}

  get idle(): number {
    return this.#idle.length;
  }

  /** Checks a hello for this token's connection and keeps `conn` idle; the refusal otherwise (the caller closes it). */
  admit(hello: ReturnType<typeof readDataHello>, conn: StreamConn, trunk = false): DataConnRefusal | undefined {
    if (this.#closed || (trunk && !this.trunks)) return 'unknown-token';
    if (this.#window.check(hello.counter) !== 'ok') return 'replayed';
    let keys: DataKeys;
    try {
      keys = exportDataKeys(this.tls, hello.counter, 'gateway');
    } catch {
      return 'unknown-token'; // the control connection is closing
    }
    if (!verifyDataHello(hello, keys.openKey, keys.openIv)) return 'forged';
    this.#window.accept(hello.counter);
    if (trunk) return this.trunks!.add(hello.counter, conn, keys) ? undefined : 'pool-full';
    if (this.#idle.length >= this.max) return 'pool-full';
    const d: IdleDataConn = { counter: hello.counter, conn, keys };
    this.#idle.push(d);
    // A FIN, a reset or bytes while idle: dead (the agent replaced it); dropped, not handed to a stream.
    this.#guards.set(d, guardPooledConn(conn, this.clock, () => this.#drop(d)));
    return undefined;
  }

  #drop(d: IdleDataConn): void {
    this.#guards.delete(d);
    const i = this.#idle.indexOf(d);
    if (i >= 0) this.#idle.splice(i, 1);
    d.conn.destroy();
  }

  /** The oldest idle connection still open, or undefined. */
  take(): IdleDataConn | undefined {
    for (;;) {
      const d = this.#idle.shift();
      if (d) this.#guards.get(d)?.();
      if (d) this.#guards.delete(d);
      if (!d || !d.conn.destroyed) return d;
    }
  }

  /** Closes the idle connections; later hellos are refused. Idempotent. */
  close(): void {
    this.#closed = true;
    this.trunks?.close();
    for (const release of this.#guards.values()) release();
    this.#guards.clear();
    for (const d of this.#idle.splice(0)) d.conn.destroy();
    for (const conn of this.returning) conn.destroy();
    this.returning.clear();
  }
}

/** The data connections of every control connection, by token. */
export class DataConnRegistry {
  readonly #byToken = new Map<string, LinkDataConns>();

  add(conns: LinkDataConns): void {
    this.#byToken.set(conns.token.toString('hex'), conns);
  }

  remove(conns: LinkDataConns): void {
    const key = conns.token.toString('hex');
    if (this.#byToken.get(key) === conns) this.#byToken.delete(key);
    conns.close();
  }

  /** A whole hello (48 bytes) and its connection: kept, or the refusal (the caller closes it). */
  admit(bytes: Buffer, conn: StreamConn): DataConnRefusal | undefined {
    const trunk = isTrunkHello(bytes);
    let hello;
    try {
      hello = trunk ? readTrunkHello(bytes) : readDataHello(bytes);
    } catch {
      return 'bad-hello';
    }
    const conns = this.#byToken.get(hello.token.toString('hex'));
    return conns ? conns.admit(hello, conn, trunk) : 'unknown-token';
  }
}
