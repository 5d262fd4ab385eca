/**
 * A send budget shared fairly among sessions, without queues: deficit round robin where a
 * datagram that would have to wait is dropped instead (the caller drops it BEFORE sealing or
 * copying it, so excess costs one call here). Pure: time comes in as `now` (ms), nothing is
 * allocated per datagram, every field is a number.
 *
 * Time is cut into rounds of `roundMs`. A round's budget is `perSecond * roundMs / 1000`
 * datagrams (the budget of the whole path, e.g. one agent). The quantum of a round is that budget
 * divided by the sessions that sent in the previous round (at least 1): a session may always send
 * its quantum. Beyond it, a session may take what the others leave (work conserving) only while
 * the round's remaining budget still covers what sessions sent within their shares in the
 * previous round and have not sent again yet in this one (their expected demand), and a
 * datagram's worth for each session of the previous round not seen yet in this one; else its
 * datagram is dropped as `session-share`. When the round's budget is spent, every datagram is
 * dropped as `agent-budget` until the next round, except that a session with its share unused
 * (one that arrived after a lone flooder took the round) may draw on a spare of 1/8 of the
 * round's budget: a round carries at most 9/8 of its budget, and a newcomer is not shut out by a
 * flooder that was alone in the previous round.
 *
 * Deficits: a session that sent in the previous round carries up to one quantum (at least one
 * datagram) of unused credit, so quanta under one datagram (many sessions, small budget) still
 * add up; a session idle for a round starts again from one quantum (no hoarding by idle ones).
 */

/** Why a datagram was not admitted; 0 means it was. Numbers, so a verdict is never an allocation. */
export const ADMIT = 0;
export const DROP_AGENT_BUDGET = 1;
export const DROP_SESSION_SHARE = 2;
export type FairVerdict = typeof ADMIT | typeof DROP_AGENT_BUDGET | typeof DROP_SESSION_SHARE;

/** The drop reasons as metrics and records name them. */
export type FairDropReason = 'agent-budget' | 'session-share';

export function fairDropReason(v: typeof DROP_AGENT_BUDGET | typeof DROP_SESSION_SHARE): FairDropReason {
  return v === DROP_AGENT_BUDGET ? 'agent-budget' : 'session-share';
}

/** The spare of a round, as a part of its budget. */
const SPARE = 1 / 8;

export interface FairShareSettings {
  /** Datagrams per second the whole path may carry; 0 disables the budget (every datagram admitted). */
  readonly perSecond: number;
  /** Length of a round in ms (the budget's granularity: also the largest burst). Default 10. */
  readonly roundMs?: number;
}

/** One session's state in a FairShare; the owner keeps it beside the session (one per session, not per datagram). */
export class FairSlot {
  /** The round this slot last sent in (-1: never). */
  round = -1;
  /** Datagrams this slot may still send within its share this round (may be fractional). */
  deficit = 0;
  /** Datagrams this slot had dropped, by reason (cumulative). */
  droppedBudget = 0;
  droppedShare = 0;
}

export class FairShare {
  readonly perRound: number;
  readonly roundMs: number;
  #round = 0;
  #roundEnd = -Infinity;
  /** Budget left in the current round. */
  #left = 0;
  /** Sessions that sent in the current round and in the previous one. */
  #active = 0;
  #lastActive = 1;
  #quantum = 0;
  /** Datagrams admitted within their session's share this round, and in the previous round. */
  #inShare = 0;
  #lastInShare = 0;
  /** The overdraft of a round for sessions that still have a share when the budget is spent. */
  #spare = 0;
  /** Cumulative drops by reason, over every slot. */
  droppedBudget = 0;
  droppedShare = 0;
  admitted = 0;

  constructor(settings: FairShareSettings) {
    this.roundMs = settings.roundMs ?? 10;
    if (!(this.roundMs > 0)) throw new RangeError('fair share: roundMs must be > 0');
    if (!(settings.perSecond >= 0)) throw new RangeError('fair share: perSecond must be >= 0');
    this.perRound = (settings.perSecond * this.roundMs) / 1000;
  }

  get enabled(): boolean {
    return this.perRound > 0;
  }

  /** The quantum of the current round (datagrams per session). */
  get quantum(): number {
    return this.#quantum;
  }

  /** One datagram of `slot` at `now` (ms, monotonic): ADMIT, or the reason to drop it. */
  admit(slot: FairSlot, now: number): FairVerdict {
    if (this.perRound <= 0) {
      this.admitted++;
      return ADMIT;
    }
    if (now >= this.#roundEnd) this.#newRound(now);
    if (slot.round !== this.#round) {
      const q = this.#quantum;
      // Backlogged since the last round: carry what is left of its credit (at most one quantum, at least a datagram's worth).
      const carry = slot.round === this.#round - 1 ? Math.min(slot.deficit, q > 1 ? q : 1) : 0;
      slot.deficit = carry + q;
      slot.round = this.#round;
      this.#active++;
    }
    if (this.#left < 1) {
      // A session that has not used its share (one that came after the budget was taken) may draw on the spare.
      if (slot.deficit >= 1 && this.#spare >= 1) {
        slot.deficit -= 1;
        this.#spare -= 1;
        this.admitted++;
        return ADMIT;
      }
      slot.droppedBudget++;
      this.droppedBudget++;
      return DROP_AGENT_BUDGET;
    }
    if (slot.deficit >= 1) {
      slot.deficit -= 1;
      this.#left -= 1;
      this.#inShare++;
      this.admitted++;
      return ADMIT;
    }
    // Over its share: only what no session that has a share left can still claim.
    const owed = this.#lastInShare - this.#inShare;
    const unseen = (this.#lastActive - this.#active) * (this.#quantum < 1 ? this.#quantum : 1);
    if (this.#left - 1 >= (owed > unseen ? owed : unseen)) {
      this.#left -= 1;
      this.admitted++;
      return ADMIT;
    }
    slot.droppedShare++;
    this.droppedShare++;
    return DROP_SESSION_SHARE;
  }

  #newRound(now: number): void {
    // Rounds skipped while nothing was sent count as idle: nobody was backlogged through them.
    const skipped = this.#roundEnd === -Infinity ? 0 : Math.floor((now - this.#roundEnd) / this.roundMs);
    this.#round += 1 + skipped;
    this.#roundEnd = (this.#roundEnd === -Infinity ? now : this.#roundEnd + skipped * this.roundMs) + this.roundMs;
    this.#lastActive = skipped > 0 || this.#active === 0 ? 1 : this.#active;
    this.#active = 0;
    this.#lastInShare = skipped > 0 ? 0 : this.#inShare;
    this.#inShare = 0;
    this.#left = this.perRound;
    this.#spare = this.perRound * SPARE;
    this.#quantum = this.perRound / this.#lastActive;
  }
}
