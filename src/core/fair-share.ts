/**
 * A send budget shared fairly among sessions, without queues: deficit round robin where a
 * datagram that would have to wait is dropped instead (the caller drops it BEFORE sealing or
 * copying it, so excess costs one call here). Pure: time comes in as `now` (ms), nothing is
 * allocated per datagram, every field is a number.
 *
 * Time is cut into rounds of `roundMs`. A round's budget is `perSecond * roundMs / 1000`
 * datagrams (the budget of the whole path, e.g. one agent). The quantum of a round is that budget
 * divided by the most sessions that sent in one of the last RECENT_ROUNDS rounds (at least 1): a
 * session may always send its quantum. Beyond it, a session may take what the others leave (work
 * conserving) only while the round's remaining budget still covers what is held back for the
 * others: for each session, twice what it offered in its latest round plus one, at most its
 * quantum (for the sessions of the previous round not seen yet in this one, what was held back
 * for them then); else its datagram is dropped as `session-share`. When the round's budget is
 * spent, every datagram is dropped as `agent-budget` until the next round, except that a session with its share unused
 * that did not send in the previous round or sends no more than expected of it (one that arrived
 * after a lone flooder took the round, or whose demand was underestimated) may draw on a spare of
 * 1/8 of the round's budget (at least 4 datagrams), and a newcomer is not shut out by a flooder
 * that was alone in the previous round.
 *
 * Budget a round leaves unused (and the whole budget of rounds in which nothing was sent) is
 * banked for the next rounds, at most BANK_ROUNDS rounds' worth: a token bucket at the budget's
 * rate. Datagrams are judged when the process reads them, not when they were sent: after a stall
 * (a GC, a shared CPU, a client moved to a socket of its own) a paced client's backlog is read in
 * one round, and without the bank a 40k/s client delayed 30 ms lost what exceeded one round's
 * budget as `agent-budget`, though it never sent faster than the budget. A flood leaves nothing
 * unused, so it banks nothing: over any time T, at most `perSecond * T` plus the bank (and the
 * spares) is admitted.
 *
 * Deficits: a session that sent in the previous round carries at most one datagram's worth of
 * unused credit, so quanta under one datagram (many sessions, small budget) still add up, and at
 * most one datagram's worth of debt (what it took beyond its share), so sessions over their
 * share take turns; a session idle for a round starts again from one quantum (no hoarding by idle
 * ones).
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

/**
 * How many rounds a session counts as active after it last sent: one that sends every few rounds
 * (a game client, a paced echo, a loop that stalled) keeps its share instead of finding a
 * flooder holding the whole budget each time it comes back.
 */
const RECENT_ROUNDS = 10;

/** The spare of a round as a part of its budget, and its least size (a newcomer's first round trips). */
const SPARE = 1 / 8;
const MIN_SPARE = 4;

/**
 * The most rounds' worth of unused budget a round can bank (40 ms at the budget's rate): more than
 * a listener's receive queue holds at the default budget (2 MiB accounted, about 2,700 datagrams
 * of 64 B), so a backlog the kernel kept is not dropped here for arriving late.
 */
const BANK_ROUNDS = 4;

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
  /** It did not send in the previous round: it may draw on the spare. */
  fresh = true;
  /** Datagrams offered in its latest round (admitted or not): its demand. */
  offered = 0;
  /** What is still held back for it this round (its expected demand, at most its share). */
  reserved = 0;
  /** Its expected demand this round: twice what it offered in its latest round, plus one. */
  expected = 1;
  /** When the batch's forwarded datagrams were last charged to it (`FairShare.charge`; ms, -Infinity: never), and its `offered` then. */
  chargedAt = -Infinity;
  offeredAtCharge = 0;
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
  /** The most sessions active in one of the last RECENT_ROUNDS rounds (at least 1): the quantum's divisor. */
  #recent = 1;
  readonly #history = new Uint32Array(RECENT_ROUNDS);
  #historyAt = 0;
  #quantum = 0;
  /** What is still held back this round for the sessions seen in it (whole datagrams). */
  #owed = 0;
  /** What was held back in all, this round and in the previous one. */
  #expectedNow = 0;
  #expectedLast = 0;
  /** The latest round before this one in which anything was sent. */
  #lastBusy = -1;
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
    if (slot.round !== this.#round) this.#enter(slot);
    slot.offered++;
    if (this.#left < 1) {
      // A session within its share that is new, or sends no more than expected of it (one that came
      // after the budget was taken, or whose expected demand was underestimated), may draw on the spare.
      if ((slot.fresh || slot.offered <= slot.expected) && slot.deficit >= 1 && this.#spare >= 1) {
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
      if (slot.reserved > 0) {
        slot.reserved--;
        this.#owed--;
      }
      this.admitted++;
      return ADMIT;
    }
    // Over its share: only what is not held back for the sessions seen this round, nor for those
    // of the previous round not seen yet (their reservations then, as an estimate).
    const unseen = this.#expectedLast > this.#expectedNow ? this.#expectedLast - this.#expectedNow : 0;
    // With quanta under one datagram, a session in debt does not borrow again: they take turns.
    if ((this.#quantum >= 1 || slot.deficit >= 0) && this.#left - 1 >= this.#owed + unseen) {
      // Borrowed from its next share (at most one datagram's worth carries over): among sessions
      // over their share, the one that borrowed least goes first.
      slot.deficit -= 1;
      this.#left -= 1;
      this.admitted++;
      return ADMIT;
    }
    slot.droppedShare++;
    this.droppedShare++;
    return DROP_SESSION_SHARE;
  }

  /** `slot`'s first datagram of this round: its share, carry and reservation (see the class comment). */
  #enter(slot: FairSlot): void {
    const q = this.#quantum;
    // Backlogged since the last round: carry what is left of its credit, at most one datagram's
    // worth (so quanta under one add up, and a session cut off by the spent budget cannot come
    // back with a double share and take the spare).
    // Rounds in which nothing at all was sent (the process stalled) do not break a backlog.
    const backlogged = slot.round === this.#lastBusy;
    const d = slot.deficit;
    const carry = backlogged ? (d > 1 ? 1 : d < -1 ? -1 : d) : 0;
    slot.deficit = carry + q;
    slot.fresh = !backlogged;
    slot.round = this.#round;
    this.#active++;
    // Held back for it: twice what it offered in its latest round, plus one, at most its share.
    const share = Math.floor(slot.deficit);
    const want = 2 * slot.offered + 1;
    const r = want < share ? want : share;
    slot.reserved = r > 0 ? r : 0;
    slot.expected = want;
    slot.offered = 0;
    this.#owed += slot.reserved;
    this.#expectedNow += slot.reserved;
  }

  /**
   * Counts `n` datagrams of `slot` that were sent without asking (the native batch's pool,
   * datapath/offload-pool.ts, admitted them under its own copy of this budget) as admitted now:
   * the budget and the session's share are charged with them, so what JavaScript admits after
   * them leaves room for what the batch carries. Only their part in the current round is charged
   * (`#inThisRound`).
   */
  charge(slot: FairSlot, now: number, forwarded: number): void {
    if (this.perRound <= 0 || forwarded <= 0) return;
    if (now >= this.#roundEnd) this.#newRound(now);
    this.admitted += forwarded;
    const n = this.#inThisRound(slot, now, forwarded);
    if (n <= 0) {
      slot.offeredAtCharge = slot.offered;
      // All in earlier rounds: it spends what this round banked of them.
      const banked = this.#left - this.perRound;
      if (banked > 0) this.#left -= forwarded < banked ? forwarded : banked;
      return;
    }
    if (slot.round !== this.#round) this.#enter(slot);
    slot.offered += n;
    slot.offeredAtCharge = slot.offered;
    slot.deficit -= n;
    // Even this round's part can exceed what is left of its budget: it spends that (JavaScript
    // then admits only from the spare), never the next round's. The part in earlier rounds used
    // their budget (under the pool's copy): it spends what this round banked of them.
    const earlier = forwarded - n;
    const banked = this.#left - this.perRound;
    const spent = n + (earlier < banked ? earlier : banked > 0 ? banked : 0);
    this.#left = this.#left > spent ? this.#left - spent : 0;
    const r = n < slot.reserved ? n : slot.reserved;
    slot.reserved -= r;
    this.#owed -= r;
  }

  /**
   * The part of `n` datagrams the batch forwarded for `slot` that falls in the current round. They
   * were forwarded since it was last seen here (its last charge, or the end of the round in which
   * it last sent through `admit`), taken as spread evenly over that time: what fell in earlier
   * rounds was under those rounds' budgets (the pool's copy), and charging it all to this one
   * would spend it for a paced session that merely was not folded for a sweep (its next
   * datagrams through `admit` in this round, e.g. while it is handed over again, dropped as
   * `agent-budget`). Rounded up; all of `n` when that time lies within this round or is unknown.
   */
  #inThisRound(slot: FairSlot, now: number, n: number): number {
    const start = this.#roundEnd - this.roundMs;
    const lastRoundEnd = slot.round < 0 ? -Infinity : this.#roundEnd - (this.#round - slot.round) * this.roundMs;
    // Its last charge, unless it sent through `admit` since (in a later round, or more offered in the same one).
    const admittedSince = slot.chargedAt < lastRoundEnd - this.roundMs || slot.offered !== slot.offeredAtCharge;
    const seen = admittedSince ? lastRoundEnd : slot.chargedAt;
    slot.chargedAt = now;
    if (seen >= start || seen === -Infinity || now <= seen) return n;
    return Math.ceil((n * (now - start)) / (now - seen));
  }

  /**
   * Admits up to `want` datagrams of `slot` at once, as that many `admit` calls would, and returns
   * how many: for a sender that forwards them later without asking each time (the native batch's
   * credit). The first refusal ends it and is not counted as a drop: nothing was offered yet.
   */
  take(slot: FairSlot, now: number, want: number): number {
    let n = 0;
    for (; n < want; n++) {
      const v = this.admit(slot, now);
      if (v === ADMIT) continue;
      slot.offered--;
      if (v === DROP_AGENT_BUDGET) {
        slot.droppedBudget--;
        this.droppedBudget--;
      } else {
        slot.droppedShare--;
        this.droppedShare--;
      }
      break;
    }
    return n;
  }

  #newRound(now: number): void {
    // Rounds skipped while nothing was sent count as idle in the history of active sessions (a
    // backlog spans them, see `#lastBusy`: the process may just have stalled).
    const first = this.#roundEnd === -Infinity;
    const skipped = first ? 0 : Math.floor((now - this.#roundEnd) / this.roundMs);
    if (this.#active > 0) this.#lastBusy = this.#round;
    this.#round += 1 + skipped;
    this.#roundEnd = (this.#roundEnd === -Infinity ? now : this.#roundEnd + skipped * this.roundMs) + this.roundMs;
    this.#remember(this.#active);
    for (let i = 0; i < skipped && i < RECENT_ROUNDS; i++) this.#remember(0);
    let recent = 1;
    for (let i = 0; i < RECENT_ROUNDS; i++) if (this.#history[i]! > recent) recent = this.#history[i]!;
    this.#recent = recent;
    this.#active = 0;
    this.#owed = 0;
    this.#expectedLast = skipped >= RECENT_ROUNDS ? 0 : this.#expectedNow;
    this.#expectedNow = 0;
    // Unused budget is banked (the previous round's, then every skipped round's), at most BANK_ROUNDS rounds' worth.
    const unused = first ? 0 : this.#left + skipped * this.perRound;
    const cap = BANK_ROUNDS * this.perRound;
    this.#left = this.perRound + (unused < cap ? unused : cap);
    this.#spare = Math.max(this.perRound * SPARE, MIN_SPARE);
    this.#quantum = this.perRound / recent;
  }

  #remember(active: number): void {
    this.#history[this.#historyAt] = active;
    this.#historyAt = (this.#historyAt + 1) % RECENT_ROUNDS;
  }
}
