/**
 * The reply budget of a relayed UDP flow: what Sluice forwards back to a source is at most
 * `ratio` times what that source sent, over a sliding window of one to two `windowMs`.
 *
 * Why a budget and not a "validated" flag: a transparent relay cannot make a UDP client prove
 * it receives (the client is any UDP program, and the relay adds nothing to the wire), so any
 * flag a flow earns by sending again is earned by a blind spoofer too. The budget promises only
 * what it can keep: whatever the upstream does, a spoofed source gets at most `ratio` times the
 * bytes the attacker spent, and replies over that are dropped and counted (docs/security.md).
 *
 * The window is two counter pairs (current, previous) rotated lazily: the owner passes the
 * index of the current window (from a tick it already keeps), and a state whose index is behind
 * shifts before it is used. So the per-datagram cost is one comparison and two additions on
 * fields of an object the datagram already touched; nothing is allocated and no timer exists per
 * flow. Bound: over any run of windows, replies <= ratio x bytes received (each check compares
 * the sums of the same two windows on both sides).
 */

export interface ReplyBudget {
  /** Reply bytes allowed per byte received from the source (payload bytes both ways). */
  readonly ratio: number;
  /** Length of one window; the budget looks back one to two windows. */
  readonly windowMs: number;
}

/** The counters a flow carries for its budget. Initialise with `newBudgetState`'s values. */
export interface ReplyBudgetState {
  /** Window index the current counters belong to. */
  budgetWindow: number;
  budgetIn: number;
  budgetInPrev: number;
  budgetOut: number;
  budgetOutPrev: number;
}

/** Brings the counters to window `w` (lazy rotation). */
function roll(s: ReplyBudgetState, w: number): void {
  if (s.budgetWindow === w) return;
  if (s.budgetWindow === w - 1) {
    s.budgetInPrev = s.budgetIn;
    s.budgetOutPrev = s.budgetOut;
  } else {
    s.budgetInPrev = 0;
    s.budgetOutPrev = 0;
  }
  s.budgetIn = 0;
  s.budgetOut = 0;
  s.budgetWindow = w;
}

/** Counts `bytes` received from the source in window `w`. */
export function budgetReceived(s: ReplyBudgetState, bytes: number, w: number): void {
  if (s.budgetWindow !== w) roll(s, w);
  s.budgetIn += bytes;
}

/**
 * Whether a reply of `bytes` fits the budget in window `w`; when it does it is counted as sent.
 * A reply that does not fit is not counted: the caller drops it and counts the drop.
 */
export function budgetAllows(s: ReplyBudgetState, bytes: number, ratio: number, w: number): boolean {
  if (s.budgetWindow !== w) roll(s, w);
  if (s.budgetOut + s.budgetOutPrev + bytes > ratio * (s.budgetIn + s.budgetInPrev)) return false;
  s.budgetOut += bytes;
  return true;
}

/** Counts `bytes` already sent to the source in window `w` (sent by a path that checked its own allowance). */
export function budgetSent(s: ReplyBudgetState, bytes: number, w: number): void {
  if (s.budgetWindow !== w) roll(s, w);
  s.budgetOut += bytes;
}

/** Reply bytes that still fit the budget in window `w` (may be negative after a forced `budgetSent`). */
export function budgetLeft(s: ReplyBudgetState, ratio: number, w: number): number {
  if (s.budgetWindow !== w) roll(s, w);
  return ratio * (s.budgetIn + s.budgetInPrev) - s.budgetOut - s.budgetOutPrev;
}

/** Whole windows of `tickMs` ticks in one budget window (at least 1). */
export function windowTicks(budget: ReplyBudget, tickMs: number): number {
  return Math.max(1, Math.round(budget.windowMs / tickMs));
}

/**
 * The defaults (docs/security.md, "Reply budget"). 64x over 10 s lets through what legitimate
 * UDP does: DNS answers (up to ~40x for a 1,500-byte answer to a 40-byte query), game state
 * (~10-30x), WireGuard or QUIC downloads (a 1,452-byte data packet per half of a ~96-byte
 * acknowledgement: ~30x) with room for stretch acknowledgements; and it caps what a blind spoofer
 * gets at 64x, no worse than the DNS amplification already on the internet, where an upstream
 * that streams without being asked would otherwise give it unbounded amplification.
 */
export const DEFAULT_REPLY_BUDGET: ReplyBudget = Object.freeze({ ratio: 64, windowMs: 10_000 });
