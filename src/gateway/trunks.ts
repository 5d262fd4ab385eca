import type { SealedKeys, StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';
import type { StreamTrunk } from '../datapath/stream-trunk.js';
import { POOLED_KEEPALIVE } from '../datapath/pooled-conn.js';

/** A trunk of one control connection and the counter its hello named (what STREAM_OPEN names it by). */
export interface LinkTrunk {
  readonly counter: number;
  readonly trunk: StreamTrunk;
}

/** Trunks one control connection may hold at the gateway; more are closed (agent.trunks is at most 16). */
export const MAX_LINK_TRUNKS = 16;

/**
 * The trunks of one control connection at the gateway (docs/tunnel-protocol.md, "Trunks"): each
 * authenticated like a data connection (data-conns.ts), then made a trunk on the stream datapath.
 * Streams are spread over the live ones in turn; one that ends is forgotten (the agent dials
 * another). Closed with the control connection.
 */
export class LinkTrunks {
  readonly #live: LinkTrunk[] = [];
  #turn = 0;
  #closed = false;

  constructor(private readonly datapath: StreamDatapath) {}

  get size(): number {
    return this.#live.length;
  }

  /** Makes `conn` (its hello checked) a trunk; false when it cannot be one (the caller closes it). */
  add(counter: number, conn: StreamConn, keys: SealedKeys): boolean {
    if (this.#closed || this.#live.length >= MAX_LINK_TRUNKS) return false;
    let entry: LinkTrunk | undefined;
    // A trunk idle for long keeps its NAT mapping and is found dead by keepalive, as a pooled data connection.
    conn.keepAlive?.(POOLED_KEEPALIVE.idleS, POOLED_KEEPALIVE.intervalS, POOLED_KEEPALIVE.count);
    const trunk = this.datapath.trunk?.(conn, keys, () => {
      const i = entry ? this.#live.indexOf(entry) : -1;
      if (i >= 0) this.#live.splice(i, 1);
    });
    if (!trunk) return false;
    entry = { counter, trunk };
    this.#live.push(entry);
    return true;
  }

  /** The next live trunk in turn, or undefined. */
  pick(): LinkTrunk | undefined {
    for (let n = this.#live.length; n > 0; n--) {
      const t = this.#live[this.#turn++ % this.#live.length]!;
      if (!t.trunk.dead) return t;
    }
    return undefined;
  }

  /** Closes every trunk (their streams end). Idempotent. */
  close(): void {
    this.#closed = true;
    for (const t of this.#live.splice(0)) t.trunk.close();
  }
}
