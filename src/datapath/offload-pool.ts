import { FORWARD_ENTRIES, type Engine } from './native/native-keys.js';
import type { EngineHandle } from './native/binding.js';

/** The send-budget pools of the addon (native/src/forward-pool.cc); absent in older builds. */
export interface PoolBinding {
  /** A pool of `perSecond` datagrams in rounds of `roundMs`, or -1 (no forwarding table, or perSecond <= 0). */
  forwardPoolNew(engine: EngineHandle, perSecond: number, roundMs: number): number;
  forwardPoolFree(engine: EngineHandle, pool: number): void;
  /** The seal entry draws on the pool once its credit is used up, with `bank` (FairSlot.bank) carried over; false when it cannot. */
  forwardPoolJoin(engine: EngineHandle, entry: number, pool: number, bank?: number): boolean;
  /** Per entry [agent-budget, session-share, stale]: what was dropped for its budget in the batch (written there only). */
  forwardPoolAttach(engine: EngineHandle, drops: Float64Array): void;
}

/** Drop counters per entry in `poolDrops`: agent-budget, session-share, stale (native/src/forward-pool.h agrees). */
export const POOL_DROP_REASONS = 3;

const dropArrays = new WeakMap<Engine, Float64Array | null>();

/**
 * The engine's pool drop counters, attached on first use (null with an addon that has no pools):
 * per forwarding entry, datagrams its pool dropped as agent-budget and as session-share, and those
 * its parked socket's queue held past their bound (stale, native/src/age.cc).
 */
export function poolDrops(e: Engine): Float64Array | null {
  let d = dropArrays.get(e);
  if (d !== undefined) return d;
  const b = e.fwd?.b as Partial<PoolBinding> | undefined;
  d = null;
  if (e.fwd !== null && typeof b?.forwardPoolAttach === 'function') {
    d = new Float64Array(FORWARD_ENTRIES * POOL_DROP_REASONS);
    b.forwardPoolAttach(e.handle, d);
  }
  dropArrays.set(e, d);
  return d;
}

/**
 * One send budget (upstream/agent/send-budget.ts) in the native engines (docs/datapath.md, "Send
 * budgets in the batch"): a pool per engine, made when the first of its sessions is handed over,
 * from which the batch refills a seal entry's credit itself, shared fairly among the budget's
 * entries in the same rounds as core/fair-share.ts. What the pool refuses it drops in the batch
 * and counts by reason (`poolDrops`; JavaScript folds them into the session and the budget's
 * counters); JavaScript's FairShare is charged with what the pool forwarded.
 */
export class OffloadPools {
  readonly #ids = new Map<Engine, number>();
  #closed = false;

  constructor(
    readonly perSecond: number,
    readonly roundMs: number,
  ) {}

  /**
   * Entry `entry` of engine `e` draws on this budget's pool there, with what its session had banked
   * in JavaScript (`bank`: a session handed over again, e.g. moved to a socket of its own, keeps it);
   * false where it cannot (older addon, budget off, closed).
   */
  join(e: Engine, entry: number, bank = 0): boolean {
    if (this.#closed || !(this.perSecond > 0) || e.fwd === null) return false;
    const b = e.fwd.b as Partial<PoolBinding>;
    if (typeof b.forwardPoolJoin !== 'function' || typeof b.forwardPoolNew !== 'function') return false;
    let id = this.#ids.get(e);
    if (id === undefined) {
      poolDrops(e);
      id = b.forwardPoolNew(e.handle, this.perSecond, this.roundMs);
      if (id < 0) return false;
      this.#ids.set(e, id);
    }
    return b.forwardPoolJoin(e.handle, entry, id, bank);
  }

  /** Frees the pools: their entries forward on their credit alone (none: JavaScript decides). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [e, id] of this.#ids) (e.fwd?.b as Partial<PoolBinding> | undefined)?.forwardPoolFree?.(e.handle, id);
    this.#ids.clear();
  }
}
