import { FairSlot } from './fair-slot.js';

export { FairSlot };

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
 * 1/8 of the round's budget (at least 4 datagrams): a newcomer is not shut out by a flooder that
 * was alone in the previous round.
 *
 * Banks: a session keeps what it leaves of its share, at most BANK_ROUNDS shares (a token bucket
 * per session at its share's rate): what was left of its latest round, its whole share of every
 * round since in which it sent nothing, less what it took beyond its share (a debt is paid from
 * the bank first). A datagram that would be dropped is admitted from the session's bank instead,
 * beyond the round's budget. Datagrams are judged when the process reads them, not when they
 * were sent: after a stall (a GC, a shared CPU, a client moved to a socket of its own) a paced
 * client's backlog is read in one round, and without banks a 40k/s client delayed 30 ms lost
 * what exceeded one round's budget as `agent-budget`, though it never sent more than its share.
 * A session over its share (a flooder) has nothing banked, so its excess is dropped as before. A
 * round admits at most its budget, the spare, and what sessions had banked while within their
 * share.
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

/**
 * The drop reasons as metrics and records name them. `stale` is never FairShare's verdict: the
 * native batch drops what waited in a parked socket's queue past its bound (native/src/age.cc).
 */
export type FairDropReason = 'agent-budget' | 'session-share' | 'stale';

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
 * The most shares a session can bank (40 ms of its share): at the default budget more than a
 * listener's receive queue holds (2 MiB accounted, about 2,700 datagrams of 64 B), so a backlog
 * the kernel kept for a session within its share is not dropped here for being read late.
 */
const BANK_ROUNDS = 4;

export interface FairShareSettings {
  /** Datagrams per second the whole path may carry; 0 disables the budget (every datagram admitted). */
  readonly perSecond: number;
  /** Length of a round in ms (the budget's granularity: also the largest burst). Default 10. */
  readonly roundMs?: number;
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
      if (slot.bank >= 1) return this.#fromBank(slot);
      slot.refused = true;
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
    if (slot.bank >= 1) return this.#fromBank(slot);
    slot.refused = true;
    slot.droppedShare++;
    this.droppedShare++;
    return DROP_SESSION_SHARE;
  }

  /** Admits a datagram of `slot` from its bank, beyond the round's budget. */
  #fromBank(slot: FairSlot): typeof ADMIT {
    slot.bank -= 1;
    this.admitted++;
    return ADMIT;
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
    if (slot.round >= 0) this.#bankUnused(slot, slot.refused && d > carry ? 0 : d - carry, q);
    slot.refused = false;
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
   * Banks what `slot` left of its share (`unused`, negative for what it took beyond it) and its
   * whole share `q` of each round since its latest in which it sent nothing: neither through
   * `admit` nor, as far as charges tell, in the batch (rounds up to its last charge are not idle).
   */
  #bankUnused(slot: FairSlot, unused: number, q: number): void {
    let idle = this.#round - slot.round - 1;
    if (idle > 0 && slot.chargedAt !== null) {
      const charged = this.#round + Math.floor((slot.chargedAt - (this.#roundEnd - this.roundMs)) / this.roundMs);
      if (charged > slot.round) idle = this.#round - charged - 1;
    }
    const b = idle > 0 ? slot.bank + unused + idle * q : slot.bank + unused;
    if (b <= 0) {
      slot.bank = 0;
      return;
    }
    const cap = BANK_ROUNDS * q;
    slot.bank = b < cap ? b : cap;
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
      return;
    }
    if (slot.round !== this.#round) this.#enter(slot);
    slot.offered += n;
    slot.offeredAtCharge = slot.offered;
    slot.deficit -= n;
    // Beyond its share: paid from its bank first (what it banked was for this).
    if (slot.deficit < 0 && slot.bank > 0) {
      const pay = -slot.deficit < slot.bank ? -slot.deficit : slot.bank;
      slot.bank -= pay;
      slot.deficit += pay;
    }
    // Even this round's part can exceed what is left of its budget: it spends that (JavaScript
    // then admits only from the spare), never the next round's.
    this.#left = this.#left > n ? this.#left - n : 0;
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
    const chargedAt = slot.chargedAt ?? -Infinity;
    const admittedSince = chargedAt < lastRoundEnd - this.roundMs || slot.offered !== slot.offeredAtCharge;
    const seen = admittedSince ? lastRoundEnd : chargedAt;
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
    const refused = slot.refused;
    const round = slot.round;
    let n = 0;
    for (; n < want; n++) {
      const v = this.admit(slot, now);
      if (v === ADMIT) continue;
      slot.offered--;
      slot.refused = slot.round === round ? refused : false;
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
    const skipped = this.#roundEnd === -Infinity ? 0 : Math.floor((now - this.#roundEnd) / this.roundMs);
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
    this.#left = this.perRound;
    this.#spare = Math.max(this.perRound * SPARE, MIN_SPARE);
    this.#quantum = this.perRound / recent;
  }

  #remember(active: number): void {
    this.#history[this.#historyAt] = active;
    this.#historyAt = (this.#historyAt + 1) % RECENT_ROUNDS;
  }
}
