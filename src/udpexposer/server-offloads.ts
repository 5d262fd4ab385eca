import type { Clock } from '../core/clock.js';
import type { TagOffloadOptions } from '../datapath/tag-offload.js';
import { budgetLeft, budgetReceived, budgetSent, type ReplyBudget } from '../core/reply-budget.js';
import { TAG_BYTES } from '../protocol/udpexposer/constants.js';
import { foldDeltas, OFFLOAD_AFTER, TOKEN_TAG, type ChannelOffload, type DatagramCount } from './channel-offload.js';
import type { Connectee, ConnecteeTable } from './connectee-table.js';

/** Installs the entries of connectee `c`'s channel with the client at `client` (server.ts binds it to the socket). */
export type ConnecteeOffloader = (
  c: { readonly address: string; readonly port: number },
  client: { readonly address: string; readonly port: number },
  o: TagOffloadOptions,
) => ChannelOffload | null;

export interface ServerOffloadsDeps {
  readonly offload: ConnecteeOffloader;
  readonly clock: Clock;
  /** The server's counters (server-core.ts) the batch's counts are folded into. */
  readonly counters: { fromConnectees: DatagramCount; toClient: DatagramCount; fromClient: DatagramCount; toConnectees: DatagramCount; forwardedInBatch: number };
  readonly table: ConnecteeTable;
  readonly budget: ReplyBudget | undefined;
  readonly maxPayload: number;
  /** Password mode: the token tag is never handed over and connectee tokens are left to JavaScript. */
  readonly password: boolean;
}

/**
 * The server's connectees whose channel the native batch carries (docs/udpexposer.md, "Datapath").
 * The core still decides: a connectee is handed over once it went past a round trip with a client
 * registered; its entries go when the client moves, when it is evicted, and when the server
 * closes. The batch's counts are folded into the server's and the connectee's counters, its idle
 * age and LRU place, and its reply budget, on the sweep, before a frame for it is judged in
 * JavaScript, and whenever the counters are read.
 */
export class ServerOffloads {
  readonly #live = new Set<Connectee>();
  readonly #d = [0, 0, 0, 0, 0];
  readonly #deps: ServerOffloadsDeps;

  constructor(deps: ServerOffloadsDeps) {
    this.#deps = deps;
  }

  /** Datagrams the batch could not send (to connectees or to the client), as folded so far. */
  sendErrors = 0;

  get size(): number {
    return this.#live.size;
  }

  /** After JavaScript relayed a datagram of `c` either way: hands its channel over once it went on. */
  consider(c: Connectee, client: { readonly replyAddress: string; readonly port: number }): void {
    if (c.offload !== null || c.offloadTried || c.datagramsIn + c.datagramsOut < OFFLOAD_AFTER) return;
    c.offloadTried = true;
    const d = this.#deps;
    if (d.password && c.tag === TOKEN_TAG) return;
    const o = d.offload(c, { address: client.replyAddress, port: client.port }, {
      tag: c.tag,
      // No password: an empty datagram from a connectee is a keepalive that moves the client.
      minPlain: d.password ? 0 : 1,
      minFramed: TAG_BYTES,
      maxPayload: d.maxPayload,
      // Password mode: a connectee datagram that begins like a token may be a registration.
      guard: d.password ? TOKEN_TAG : -1,
      replyRatio: d.budget?.ratio ?? 0,
    });
    if (o === null) return;
    c.offload = o;
    c.offloadSeen = [0, 0, 0, 0, 0];
    this.#live.add(c);
    if (d.budget !== undefined) o.allowance = budgetLeft(c, d.budget.ratio, this.#window(d.budget));
  }

  /** Folds `c`'s batch counts in (before JavaScript judges one of its datagrams). */
  fold(c: Connectee): void {
    const d = this.#deps;
    const x = this.#d;
    if (!foldDeltas(c, x)) return;
    const [dIn, bIn, dOut, bOut, lost] = x as [number, number, number, number, number];
    this.sendErrors += lost;
    const k = d.counters;
    k.fromConnectees.datagrams += dIn;
    k.fromConnectees.bytes += bIn;
    k.toClient.datagrams += dIn;
    k.toClient.bytes += bIn + TAG_BYTES * dIn;
    k.fromClient.datagrams += dOut;
    k.fromClient.bytes += bOut;
    k.toConnectees.datagrams += dOut;
    k.toConnectees.bytes += bOut;
    k.forwardedInBatch += dIn + dOut;
    c.datagramsIn += dIn;
    c.bytesIn += bIn;
    c.datagramsOut += dOut;
    c.bytesOut += bOut;
    // Heard from: its idle age and place in the LRU follow.
    if (dIn > 0) d.table.heard(c.key);
    const b = d.budget;
    if (b !== undefined) {
      const w = this.#window(b);
      budgetReceived(c, bIn, w);
      budgetSent(c, bOut, w);
      c.offload!.allowance = budgetLeft(c, b.ratio, w);
    }
  }

  /** JavaScript relayed a datagram of offloaded `c` itself (counted in its budget there): the batch's allowance follows. */
  refresh(c: Connectee): void {
    const b = this.#deps.budget;
    this.fold(c);
    if (b !== undefined && c.offload !== null) c.offload.allowance = budgetLeft(c, b.ratio, this.#window(b));
  }

  /** Every second: folds all; drops the entries whose socket went; moves allowances to the budget's window. */
  sweep(): void {
    const b = this.#deps.budget;
    for (const c of this.#live) {
      this.fold(c);
      if (!c.offload!.live) this.remove(c);
      else if (b !== undefined) c.offload!.allowance = budgetLeft(c, b.ratio, this.#window(b));
    }
  }

  foldAll(): void {
    for (const c of this.#live) this.fold(c);
  }

  /** Removes `c`'s entries, its last counts folded in; it may be handed over again. Idempotent. */
  remove(c: Connectee): void {
    if (c.offload === null) return;
    this.fold(c);
    c.offload.close();
    this.fold(c);
    c.offload = null;
    c.offloadSeen = null;
    c.offloadTried = false;
    this.#live.delete(c);
  }

  /** The client moved (or the server closes): every channel's entries name the old one. */
  removeAll(): void {
    for (const c of [...this.#live]) this.remove(c);
  }

  #window(b: ReplyBudget): number {
    return Math.floor(this.#deps.clock.now() / b.windowMs);
  }
}
