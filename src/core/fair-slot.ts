const FRESH = 1;
const REFUSED = 2;

/** What few slots set: their drops, and the native batch's charges. */
class FairSlotExtras {
  chargedAt: number | null = null;
  offeredAtCharge = 0;
  droppedBudget = 0;
  droppedShare = 0;
  droppedStale = 0;
}

/**
 * One session's state in a FairShare (fair-share.ts); the owner keeps it beside the session (one
 * per session, not per datagram), or is one (the gateway's connectee, the agent's client entry).
 * Every idle exposed session has two, so an idle slot is kept small: its two flags in one small
 * integer, and its drops and charges in an object made at the first of them (a slot that never
 * dropped and was never charged by the native batch, most of them, has none).
 */
export class FairSlot {
  /** The round this slot last sent in (-1: never). */
  round = -1;
  /** Datagrams this slot may still send within its share this round (may be fractional). */
  deficit = 0;
  /** Datagrams offered in its latest round (admitted or not): its demand. */
  offered = 0;
  /** What is still held back for it this round (its expected demand, at most its share). */
  reserved = 0;
  /** Its expected demand this round: twice what it offered in its latest round, plus one. */
  expected = 1;
  /** Its share left unused, kept for a backlog read late (at most BANK_ROUNDS shares; see FairShare). */
  bank = 0;
  #flags = FRESH;
  #x: FairSlotExtras | null = null;

  /** It did not send in the previous round: it may draw on the spare. */
  get fresh(): boolean {
    return (this.#flags & FRESH) !== 0;
  }
  set fresh(v: boolean) {
    this.#flags = v ? this.#flags | FRESH : this.#flags & ~FRESH;
  }

  /** A datagram of it was dropped in its latest round: what it left of its share then was not unused, it was refused. */
  get refused(): boolean {
    return (this.#flags & REFUSED) !== 0;
  }
  set refused(v: boolean) {
    this.#flags = v ? this.#flags | REFUSED : this.#flags & ~REFUSED;
  }

  /** When the batch's forwarded datagrams were last charged to it (`FairShare.charge`; ms, null: never). */
  get chargedAt(): number | null {
    return this.#x === null ? null : this.#x.chargedAt;
  }
  set chargedAt(v: number | null) {
    if (v !== null || this.#x !== null) (this.#x ??= new FairSlotExtras()).chargedAt = v;
  }

  /** Its `offered` at its last charge. */
  get offeredAtCharge(): number {
    return this.#x === null ? 0 : this.#x.offeredAtCharge;
  }
  set offeredAtCharge(v: number) {
    if (v !== 0 || this.#x !== null) (this.#x ??= new FairSlotExtras()).offeredAtCharge = v;
  }

  /** Datagrams this slot had dropped, by reason (cumulative). */
  get droppedBudget(): number {
    return this.#x === null ? 0 : this.#x.droppedBudget;
  }
  set droppedBudget(v: number) {
    if (v !== 0 || this.#x !== null) (this.#x ??= new FairSlotExtras()).droppedBudget = v;
  }
  get droppedShare(): number {
    return this.#x === null ? 0 : this.#x.droppedShare;
  }
  set droppedShare(v: number) {
    if (v !== 0 || this.#x !== null) (this.#x ??= new FairSlotExtras()).droppedShare = v;
  }
  get droppedStale(): number {
    return this.#x === null ? 0 : this.#x.droppedStale;
  }
  set droppedStale(v: number) {
    if (v !== 0 || this.#x !== null) (this.#x ??= new FairSlotExtras()).droppedStale = v;
  }
}
