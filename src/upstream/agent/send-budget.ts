import type { Clock, Timer } from '../../core/clock.js';
import { ADMIT, DROP_AGENT_BUDGET, FairShare, FairSlot, type FairDropReason, type FairShareSettings } from '../../core/fair-share.js';
import type { DropReason, EventStream } from '../../observe/events.js';
import { OffloadPools } from '../../datapath/offload-pool.js';

export { FairSlot };

/** Where a budget's drops are reported, asked only on a drop (a session's connectee, without a closure of its own). */
export interface DropRoute {
  routeName(): string | undefined;
}

/** How often the drops of a budget are reported as `datagrams-dropped` events (batched, never one per datagram). */
export const DROP_REPORT_MS = 1000;

/** The per-session drops a flow record carries, or undefined when there were none. */
export function slotDrops(slot: FairSlot): Partial<Record<DropReason, number>> | undefined {
  if (slot.droppedBudget === 0 && slot.droppedShare === 0 && slot.droppedStale === 0) return undefined;
  return {
    ...(slot.droppedBudget > 0 ? { 'agent-budget': slot.droppedBudget } : {}),
    ...(slot.droppedShare > 0 ? { 'session-share': slot.droppedShare } : {}),
    ...(slot.droppedStale > 0 ? { stale: slot.droppedStale } : {}),
  };
}

/** The open budgets, so that a metrics read reports their pending drops at once (`reportPendingDrops`). */
const open = new Set<SendBudget>();

/**
 * Emits every open budget's pending `datagrams-dropped` events now instead of at the end of their
 * DROP_REPORT_MS: a scrape of `sluice_datagrams_dropped_total` is then current (read up to a
 * second late otherwise). Cheap: nothing happens for a budget with nothing pending.
 */
export function reportPendingDrops(): void {
  for (const b of open) b.reportNow();
}

/**
 * The send budget of one tunnel direction (docs/expose.md, "Fairness under a flood"): the
 * gateway has one per agent for what goes to that agent, the agent one for what goes to the
 * gateway and its peers. Senders ask `admit` BEFORE sealing or copying a datagram; a refused
 * datagram costs one call. Drops are counted by reason here (the metrics' gateway counters), per
 * session in the session's FairSlot (its flow record), and per route as `datagrams-dropped`
 * events once a second.
 */
export class SendBudget {
  readonly share: FairShare;
  /** Drops since start, by reason (an owner's counters when given, e.g. summed over every agent). */
  readonly dropped: Record<FairDropReason, number>;
  /** Per route since the last report: [agent-budget, session-share, stale]. */
  readonly #pending = new Map<string, [number, number, number]>();
  /** This budget in the native engines: the batch refills offloaded sessions' credit from it (datapath/offload-pool.ts). */
  readonly pools: OffloadPools;
  #timer: Timer | undefined;
  #closed = false;

  constructor(
    settings: FairShareSettings,
    private readonly clock: Clock,
    private readonly events: EventStream | undefined,
    dropped?: Record<FairDropReason, number>,
  ) {
    this.share = new FairShare(settings);
    this.pools = new OffloadPools(settings.perSecond, this.share.roundMs);
    this.dropped = dropped ?? { 'agent-budget': 0, 'session-share': 0, stale: 0 };
    if (events) open.add(this);
  }

  /**
   * True when one datagram of `slot` may be sent now. `route` names where a drop is reported
   * (the public listener's route at the gateway, `<agent>/<service>` at the agent); it is read
   * only when the datagram is dropped.
   */
  admit(slot: FairSlot, route: string | DropRoute): boolean {
    const v = this.share.admit(slot, this.clock.now());
    if (v === ADMIT) return true;
    if (v === DROP_AGENT_BUDGET) this.#count(1, 0, 0, route);
    else this.#count(0, 1, 0, route);
    return false;
  }

  /**
   * Counts what the native batch's pool dropped for `slot` (datapath/offload-pool.ts) as `admit`
   * counts its own drops: the budget's counters, the slot's (its flow record) and the route's events.
   * `stale`: what the batch dropped from the session's parked socket as having waited too long
   * (native/src/age.cc); no refusal of the budget, so it leaves the slot's bank alone.
   */
  countDrops(slot: FairSlot, agentBudget: number, sessionShare: number, route: string | DropRoute, stale = 0): void {
    // Refused in the batch: over its share (or past its bank there), so nothing banked here either.
    if (agentBudget + sessionShare > 0) {
      slot.bank = 0;
      slot.refused = true;
    }
    slot.droppedBudget += agentBudget;
    slot.droppedShare += sessionShare;
    this.share.droppedBudget += agentBudget;
    this.share.droppedShare += sessionShare;
    slot.droppedStale += stale;
    this.#count(agentBudget, sessionShare, stale, route);
  }

  #count(budget: number, share: number, stale: number, route: string | DropRoute): void {
    this.dropped['agent-budget'] += budget;
    this.dropped['session-share'] += share;
    this.dropped.stale += stale;
    const name = typeof route === 'string' ? route : route.routeName();
    if (name !== undefined && this.events && !this.#closed) {
      let p = this.#pending.get(name);
      if (p === undefined) this.#pending.set(name, (p = [0, 0, 0]));
      p[0] += budget;
      p[1] += share;
      p[2] += stale;
      this.#timer ??= this.clock.setTimeout(() => this.#report(), DROP_REPORT_MS);
    }
  }

  /**
   * Pre-admits up to `want` datagrams of `slot` (FairShare.take) for a sender that forwards them
   * without asking each time; -1 when the budget is off (no limit).
   */
  take(slot: FairSlot, want: number): number {
    return this.share.enabled ? this.share.take(slot, this.clock.now(), want) : -1;
  }

  /** Counts `n` datagrams of `slot` the native batch forwarded under its pool (FairShare.charge). */
  charge(slot: FairSlot, n: number): void {
    if (this.share.enabled) this.share.charge(slot, this.clock.now(), n);
  }

  /** Reports what is pending, stops the timer and frees the native pools. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.pools.close();
    this.#report();
    this.#closed = true;
    open.delete(this);
  }

  /** The drops pending for the next `datagrams-dropped` events, emitted now (a metrics read). */
  reportNow(): void {
    if (this.#pending.size > 0) this.#report();
  }

  #report(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const events = this.events;
    if (!events) return;
    for (const [route, [budget, share, stale]] of this.#pending) {
      const at = this.clock.wallNow();
      if (budget > 0) events.emit({ type: 'datagrams-dropped', at, route, reason: 'agent-budget', count: budget });
      if (share > 0) events.emit({ type: 'datagrams-dropped', at, route, reason: 'session-share', count: share });
      if (stale > 0) events.emit({ type: 'datagrams-dropped', at, route, reason: 'stale', count: stale });
    }
    this.#pending.clear();
  }
}
