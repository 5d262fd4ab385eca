import type { TagOffloadOptions } from '../datapath/tag-offload.js';
import { TAG_BYTES } from '../protocol/udpexposer/constants.js';
import { foldDeltas, TOKEN_TAG, type ChannelOffload, type DatagramCount } from './channel-offload.js';
import type { Worker } from './worker-table.js';

export interface ClientOffloadsDeps {
  /** Installs the entries between worker `w`'s socket and the server behind the main socket. */
  readonly offload: (w: Worker, o: TagOffloadOptions) => ChannelOffload | null;
  /** The client's counters (client.ts) the batch's counts are folded into. */
  readonly counters: { fromServer: DatagramCount; toTarget: DatagramCount; fromTarget: DatagramCount; toServer: DatagramCount; forwardedInBatch: number; sendErrors: number };
  /** Frames for `tag` came from the server: its worker moves up in the LRU (as a frame in JavaScript does). */
  readonly promote: (tag: number) => void;
  readonly maxPayload: number;
  /** Password mode: frames under the token tag are judged in JavaScript (they may be tokens). */
  readonly password: boolean;
}

/**
 * The client's workers whose channel the native batch carries (docs/udpexposer.md, "Datapath"):
 * frames from the server to the worker's socket without their tag, the target's answers back
 * behind it. A worker is handed over once its socket is open (and, in password mode, once the
 * server has proven its key); its entries go with its socket. The batch's counts are folded into
 * the client's counters and the worker's LRU place on the sweep and whenever they are read.
 */
export class ClientOffloads {
  readonly #live = new Set<Worker>();
  readonly #d = [0, 0, 0, 0, 0];
  readonly #deps: ClientOffloadsDeps;

  constructor(deps: ClientOffloadsDeps) {
    this.#deps = deps;
  }

  get size(): number {
    return this.#live.size;
  }

  /** A worker with an open socket: hands its channel over, once. */
  consider(w: Worker): void {
    if (w.offload !== null || w.offloadTried || w.channel === null || w.closed) return;
    w.offloadTried = true;
    const d = this.#deps;
    if (d.password && w.tag === TOKEN_TAG) return;
    const o = d.offload(w, {
      tag: w.tag,
      minPlain: 0,
      // Two bytes or fewer from the server are dropped in JavaScript (as udpexposer does).
      minFramed: TAG_BYTES + 1,
      maxPayload: d.maxPayload,
      guard: -1,
      replyRatio: 0,
    });
    if (o === null) return;
    w.offload = o;
    w.offloadSeen = [0, 0, 0, 0, 0];
    this.#live.add(w);
  }

  /** Folds `w`'s batch counts in; `promote` false while the worker table itself is removing it. */
  fold(w: Worker, promote = true): void {
    const x = this.#d;
    if (!foldDeltas(w, x)) return;
    const [dUp, bUp, dDown, bDown, lost] = x as [number, number, number, number, number];
    const k = this.#deps.counters;
    k.sendErrors += lost;
    k.fromTarget.datagrams += dUp;
    k.fromTarget.bytes += bUp;
    k.toServer.datagrams += dUp;
    k.toServer.bytes += bUp + TAG_BYTES * dUp;
    k.fromServer.datagrams += dDown;
    k.fromServer.bytes += bDown;
    k.toTarget.datagrams += dDown;
    k.toTarget.bytes += bDown;
    k.forwardedInBatch += dUp + dDown;
    if (dDown > 0 && promote && !w.closed) this.#deps.promote(w.tag);
  }

  /** Every second: folds all; forgets the workers whose entries went with their socket. */
  sweep(): void {
    for (const w of this.#live) {
      this.fold(w);
      if (!w.offload!.live) this.remove(w);
    }
  }

  foldAll(): void {
    for (const w of this.#live) this.fold(w, false);
  }

  /** The worker closes: its last counts folded in, its entries removed. Idempotent. */
  remove(w: Worker): void {
    if (w.offload === null) return;
    this.fold(w, false);
    w.offload.close();
    this.fold(w, false);
    w.offload = null;
    w.offloadSeen = null;
    this.#live.delete(w);
  }
}
