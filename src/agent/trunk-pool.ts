import type { Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { DialInFlight, StreamDatapath } from '../datapath/stream-datapath.js';
import type { StreamTrunk } from '../datapath/stream-trunk.js';
import { POOLED_KEEPALIVE, POOLED_MAX_IDLE_MS } from '../datapath/pooled-conn.js';
import { encodeTrunkHello, exportDataKeys, exportDataToken, type TlsSessionLike } from '../protocol/tunnel/index.js';

/**
 * The counters of one control connection's data connections and trunks: one sequence for both,
 * since the gateway checks them against one replay window (docs/tunnel-protocol.md, "Data
 * connections", "Trunks").
 */
export class DataCounter {
  #next = 1;
  next(): number {
    return this.#next++;
  }
}

export interface AgentTrunkOptions {
  readonly datapath: StreamDatapath;
  /** The address the control connection reached. */
  readonly gateway: Endpoint;
  readonly tls: TlsSessionLike;
  /** Trunks to keep (agent.trunks). */
  readonly count: number;
  readonly clock: Clock;
  readonly dialTimeoutMs: number;
  readonly counter: DataCounter;
  /** Counts a trunk's end by why: the engine's code (a reset, a FIN, a failed record...), `idle` (replaced after an idle spell) or `closed` (with the control connection). */
  readonly ended?: (reason: string) => void;
  /** How long a trunk may stay idle both ways before it is replaced (times 0.75-1); default POOLED_MAX_IDLE_MS. */
  readonly maxIdleMs?: number;
}

/** How often the trunks' frame counts are looked at for idleness. */
const IDLE_CHECK_MS = 15_000;

/** A live trunk and its idleness as last looked at. */
interface LiveTrunk {
  readonly trunk: StreamTrunk;
  readonly maxIdleMs: number;
  frames: number;
  since: number;
}

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;
/** A trunk that ended sooner than this after its hello counts as a failure (the gateway refused it, the path is broken): the next dial waits. */
const HEALTHY_MS = 10_000;

/**
 * The agent's trunks to one gateway, for one control connection (docs/tunnel-protocol.md,
 * "Trunks"): `count` sealed connections, each dialed on the stream datapath to the address the
 * control connection reached, with a trunk hello under a new counter; the gateway names one in a
 * STREAM_OPEN. A trunk that ends (reset, refused, failed record) is replaced, at once after a
 * long life, else after a wait doubling from 0.5 s to 30 s. Closed with the control connection.
 */
export class AgentTrunks {
  readonly #live = new Map<number, LiveTrunk>();
  readonly #dials = new Set<DialInFlight>();
  readonly #token: Buffer;
  #failures = 0;
  #retry: Timer | undefined;
  readonly #idleCheck: Timer;
  #closed = false;

  constructor(private readonly o: AgentTrunkOptions) {
    this.#token = exportDataToken(o.tls);
    this.#idleCheck = o.clock.setInterval(() => this.replaceIdle(), Math.min(IDLE_CHECK_MS, (o.maxIdleMs ?? POOLED_MAX_IDLE_MS) / 4));
    this.fill();
  }

  /** The live trunk of `counter`, or undefined (not a trunk's counter, or ended). */
  get(counter: number): StreamTrunk | undefined {
    const t = this.#live.get(counter)?.trunk;
    return t && !t.dead ? t : undefined;
  }

  /**
   * Closes and replaces every trunk that carried no frame either way, and no stream, for its
   * maximum idle age: a middlebox that does not count keepalive probes as activity may have dropped
   * its mapping, and the gateway would otherwise find that out only by a stream's missing READY.
   */
  replaceIdle(): void {
    const now = this.o.clock.now();
    for (const [counter, l] of this.#live) {
      const s = l.trunk.stats();
      if (!s) continue;
      if (s.streams > 0 || s.frames !== l.frames) {
        l.frames = s.frames;
        l.since = now;
      } else if (now - l.since >= l.maxIdleMs) {
        this.#live.delete(counter);
        l.trunk.close();
        this.o.ended?.('idle');
      }
    }
    this.fill();
  }

  get size(): number {
    return this.#live.size;
  }

  fill(): void {
    while (!this.#closed && this.#retry === undefined && this.#live.size + this.#dials.size < this.o.count) this.#dial();
  }

  #failed(): void {
    const wait = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(this.#failures++, 10));
    this.#retry ??= this.o.clock.setTimeout(() => {
      this.#retry = undefined;
      this.fill();
    }, wait);
  }

  #dial(): void {
    const dialing = this.o.datapath.dial(this.o.gateway, this.o.dialTimeoutMs, (err, conn) => {
      this.#dials.delete(dialing);
      if (this.#closed) return conn?.destroy();
      if (err || !conn) return this.#failed();
      const counter = this.o.counter.next();
      let trunk: StreamTrunk | undefined;
      try {
        const keys = exportDataKeys(this.o.tls, counter, 'agent');
        if (conn.writeFirst(encodeTrunkHello(this.#token, counter, keys.sealKey, keys.sealIv))) {
          const born = this.o.clock.now();
          conn.keepAlive?.(POOLED_KEEPALIVE.idleS, POOLED_KEEPALIVE.intervalS, POOLED_KEEPALIVE.count);
          trunk = this.o.datapath.trunk?.(conn, keys, (code) => this.#ended(counter, born, code));
        }
      } catch {
        trunk = undefined; // the control connection is closing
      }
      if (!trunk) {
        conn.destroy();
        return this.#failed();
      }
      const maxIdleMs = (this.o.maxIdleMs ?? POOLED_MAX_IDLE_MS) * (0.75 + Math.random() * 0.25);
      this.#live.set(counter, { trunk, maxIdleMs, frames: trunk.stats()?.frames ?? 0, since: this.o.clock.now() });
    });
    this.#dials.add(dialing);
  }

  #ended(counter: number, born: number, code: string): void {
    this.#live.delete(counter);
    if (this.#closed) return;
    this.o.ended?.(code);
    if (this.o.clock.now() - born < HEALTHY_MS) return this.#failed();
    this.#failures = 0;
    this.fill();
  }

  /** Closes the trunks (their streams end) and stops dialing. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#retry?.cancel();
    this.#idleCheck.cancel();
    for (const d of this.#dials) d.cancel();
    this.#dials.clear();
    for (const l of this.#live.values()) {
      l.trunk.close();
      this.o.ended?.('closed');
    }
    this.#live.clear();
  }
}
