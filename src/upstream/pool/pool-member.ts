import type { Clock, Timer } from '../../core/clock.js';
import type { Candidate } from './balance.js';
import type { MemberSpec } from './member.js';
import { MemberHealth, takesSessions, type CheckOutcome, type MemberState } from './member-state.js';
import type { ActiveCheckSettings, PassiveSettings } from './pool-settings.js';

/** The last active check of a member. */
export interface LastCheck {
  readonly outcome: CheckOutcome;
  readonly latencyMs: number;
  /** Wall-clock milliseconds. */
  readonly at: number;
}

/** A live flow on a member that can be moved elsewhere (a pooled UDP channel). */
export interface Movable {
  move(): void;
  /** Bytes of the flow on its current member so far (client to member, member to client). */
  readonly bytesOut: number;
  readonly bytesIn: number;
}

/**
 * One member of a running pool: its health, its timers (checks, ejection), its counters. The pool
 * owns it; `onChange` reports each state change once.
 */
export class PoolMember implements Candidate {
  readonly health: MemberHealth;
  /** Flows picked for it and not ended yet (dials in flight included). */
  active = 0;
  sessions = 0;
  bytesFromClient = 0;
  bytesToClient = 0;
  checks = 0;
  last: LastCheck | undefined;
  /** Live UDP channels on it, moved when it goes down under `failover: move`. */
  readonly channels = new Set<Movable>();
  #checkTimer: Timer | undefined;
  #ejectTimer: Timer | undefined;
  #probing: AbortController | undefined;
  #closed = false;

  constructor(
    public spec: MemberSpec,
    private readonly clock: Clock,
    private readonly random: () => number,
    private check: ActiveCheckSettings | undefined,
    private readonly onChange: (m: PoolMember, from: MemberState, to: MemberState, cause: string) => void,
  ) {
    this.health = new MemberHealth(`pool member ${spec.label}`, check ?? { rise: 1, fall: 1 }, check && spec.ways.probe ? 'unknown' : 'up');
    if (check && spec.ways.probe) this.#schedule(this.random() * check.intervalMs);
  }

  get key(): string {
    return this.spec.key;
  }

  get weight(): number {
    return this.spec.weight;
  }

  get state(): MemberState {
    return this.health.state;
  }

  /** Bytes of ended flows plus those of live channels so far. */
  bytes(): { fromClient: number; toClient: number } {
    let fromClient = this.bytesFromClient;
    let toClient = this.bytesToClient;
    for (const c of this.channels) {
      fromClient += c.bytesOut;
      toClient += c.bytesIn;
    }
    return { fromClient, toClient };
  }

  get takes(): boolean {
    return takesSessions(this.health.state);
  }

  /**
   * A reload kept this member: new spec (weight, backup, probe) and check settings. Changed
   * check settings restart the checks; with none left, a member down by checks is up again.
   */
  reconfigure(spec: MemberSpec, check: ActiveCheckSettings | undefined): void {
    this.spec = spec;
    if (JSON.stringify(check) === JSON.stringify(this.check)) return;
    this.check = check;
    if (check) this.health.thresholds = check;
    this.#checkTimer?.cancel();
    this.#probing?.abort();
    this.#probing = undefined;
    if (check) return this.#schedule(this.random() * check.intervalMs);
    const from = this.health.state;
    const to = this.health.unchecked();
    if (to) this.onChange(this, from, to, 'checks-removed');
  }

  /** Passive health: the member failed a flow. Ejected for the backoff (doubling per ejection in a row). */
  failed(passive: PassiveSettings, cause: string): void {
    const from = this.health.state;
    if (this.health.eject() === undefined) return;
    const ms = Math.min(passive.maxEjectMs, passive.ejectMs * 2 ** Math.min(20, this.health.ejections - 1));
    this.#ejectTimer?.cancel();
    this.#ejectTimer = this.clock.setTimeout(() => {
      const was = this.health.state;
      const to = this.health.readmit(this.check !== undefined && this.spec.ways.probe !== undefined);
      if (to) this.onChange(this, was, to, 'ejection-ended');
    }, ms);
    this.onChange(this, from, 'ejected', cause);
  }

  /** A flow worked on this member: its ejection backoff starts over. */
  worked(): void {
    this.health.healthy();
  }

  /** Removed by a reload: no new flows; the pool forgets it once `active` reaches 0. */
  drain(): void {
    const from = this.health.state;
    this.#stopTimers();
    if (this.health.drain()) this.onChange(this, from, 'draining', 'removed');
  }

  close(): void {
    this.#closed = true;
    this.#stopTimers();
  }

  #stopTimers(): void {
    this.#checkTimer?.cancel();
    this.#ejectTimer?.cancel();
    this.#probing?.abort();
  }

  /** Next check `delayMs` from now, plus jitter: never sooner than the interval after the last one started. */
  #schedule(delayMs: number): void {
    if (this.#closed || this.health.state === 'draining') return;
    this.#checkTimer = this.clock.setTimeout(() => void this.#runCheck(), delayMs);
  }

  async #runCheck(): Promise<void> {
    const check = this.check!;
    const started = this.clock.now();
    const ac = new AbortController();
    this.#probing = ac;
    const timer = this.clock.setTimeout(() => ac.abort(), check.timeoutMs);
    let outcome: CheckOutcome;
    try {
      outcome = await this.spec.ways.probe!(ac.signal);
    } catch {
      outcome = 'failed';
    }
    timer.cancel();
    if (this.#closed || this.#probing !== ac) return;
    this.#probing = undefined;
    // One check in flight per member, and the next starts at least an interval after this one did.
    const elapsed = this.clock.now() - started;
    this.#schedule(Math.max(0, check.intervalMs - elapsed) + this.random() * check.jitter * check.intervalMs);
    this.checks++;
    this.last = { outcome, latencyMs: Math.round((this.clock.now() - started) * 10) / 10, at: this.clock.wallNow() };
    const from = this.health.state;
    const to = this.health.checked(outcome);
    if (to) this.onChange(this, from, to, outcome === 'ok' ? 'check-passed' : outcome === 'refused' ? 'check-refused' : 'check-failed');
  }
}
