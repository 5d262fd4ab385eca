import type { Clock, Timer } from '../core/clock.js';
import { relayOffload, type RelayOffload } from '../datapath/relay-offload.js';
import { MAX_DATAGRAM_PAYLOAD_BYTES } from '../protocol/tunnel/index.js';
import type { GatewayCounters } from './counters.js';
import type { DatagramPeerFlow } from './peer-flows.js';

/** Datagrams (both ways) a relayed flow carries in JavaScript before it is handed to the batch. */
const OFFLOAD_AFTER = 4;
/** How often the batch's counts are folded into the gateway's counters, and entries checked. */
const SWEEP_MS = 250;

/**
 * Relayed UDP peer flows whose datagrams the gateway's native batch reseals (datapath/
 * relay-offload.ts). TypeScript decides as before: a flow is handed over after OFFLOAD_AFTER
 * datagrams in JavaScript, once the target agent has answered on its connectee tag (no origin
 * block needed) and while both agents' UDP addresses are fresh with the current keys (each link's
 * `offloadEnd`). Both links' send budgets give the credit, chunk by chunk, as for an exposure.
 * Counts (send errors too) are folded into the gateway's counters and the links' datagram counters every SWEEP_MS and
 * whenever one of the flow's datagrams takes JavaScript; a change of either side (keys, address,
 * the connectee closed) closes the entries at once through the sides' groups, and the flow's end
 * removes them.
 */
export class RelayedFlowOffloads {
  readonly #live = new Set<DatagramPeerFlow>();
  #timer: Timer | undefined;

  constructor(
    private readonly counters: GatewayCounters,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.#live.size;
  }

  /** After one of `flow`'s datagrams took JavaScript toward the target (0) or the opener (1). */
  step(flow: DatagramPeerFlow, toward: 0 | 1): void {
    const o = flow.offload;
    if (o !== null) {
      if (!o.closed) {
        this.#fold(flow, o);
        if (o.credit(toward) === 0) o.refill(toward);
        return;
      }
      this.remove(flow);
    }
    // One try per SWEEP_MS per flow, by the clock (the sweep itself runs only while flows are in the batch).
    const tick = Math.floor(this.clock.now() / SWEEP_MS);
    if (++flow.viaJs < OFFLOAD_AFTER || flow.offloadTried === tick || flow.closed) return;
    flow.offloadTried = tick;
    const c = flow.channel;
    if (!c || c.closed || !c.answered) return;
    const target = c.offloadEnd();
    const opener = target ? flow.opener.offloadEnd?.(flow) : null;
    if (!target || !opener) return;
    const n = relayOffload({ ...opener, groups: [...(opener.groups ?? []), flow.offloads] }, target, MAX_DATAGRAM_PAYLOAD_BYTES);
    if (n === null) return;
    flow.offload = n;
    flow.offloadSeen = [0, 0, 0, 0, 0];
    this.#live.add(flow);
    this.#timer ??= this.clock.setInterval(() => this.#sweep(), SWEEP_MS);
  }

  /** Removes the flow's entries and folds their last counts in. Idempotent. */
  remove(flow: DatagramPeerFlow): void {
    const o = flow.offload;
    if (o === null) return;
    this.#fold(flow, o);
    o.close();
    this.#fold(flow, o);
    flow.offload = null;
    this.#live.delete(flow);
    if (this.#live.size === 0) {
      this.#timer?.cancel();
      this.#timer = undefined;
    }
  }

  #sweep(): void {
    for (const f of [...this.#live]) {
      this.#fold(f, f.offload!);
      if (!f.offload!.live) this.remove(f);
    }
  }

  #fold(flow: DatagramPeerFlow, o: RelayOffload): void {
    const seen = flow.offloadSeen;
    const dt = o.datagramsToTarget - seen[0]!;
    const dop = o.datagramsToOpener - seen[2]!;
    const lost = o.sendErrors - seen[4]!;
    if (dt === 0 && dop === 0 && lost === 0) return;
    const bt = o.bytesToTarget - seen[1]!;
    const bop = o.bytesToOpener - seen[3]!;
    flow.offloadSeen = [o.datagramsToTarget, o.bytesToTarget, o.datagramsToOpener, o.bytesToOpener, o.sendErrors];
    const c = this.counters;
    c.udpSendErrors += lost;
    c.peerDatagramsToService += dt;
    c.peerBytesToService += bt;
    c.peerDatagramsToOpener += dop;
    c.peerBytesToOpener += bop;
    o.target.forwarded(dt, dop);
    o.opener.forwarded(dop, dt);
  }
}
