import { moveState, type TransitionTable } from '../../core/state-machine.js';

/**
 * The health of one pool member.
 * - `unknown`: no verdict yet (just configured, or back from an ejection with active checks to come); takes sessions.
 * - `up`: the last `rise` checks passed (or no active check is configured); takes sessions.
 * - `down`: `fall` checks failed in a row, or one check met ICMP port unreachable; takes none.
 * - `ejected`: passive health saw it fail (a failed dial, an ICMP error, a silent UDP session);
 *   takes none until its backoff ends or, with active checks, until `rise` checks pass.
 * - `draining`: removed from the config by a reload; keeps its live sessions, takes no new ones. Final.
 */
export type MemberState = 'unknown' | 'up' | 'down' | 'ejected' | 'draining';

export const MEMBER_TRANSITIONS: TransitionTable<MemberState> = {
  unknown: ['up', 'down', 'ejected', 'draining'],
  up: ['down', 'ejected', 'draining'],
  down: ['up', 'draining'],
  ejected: ['unknown', 'up', 'down', 'draining'],
  draining: [],
};

/** True for the states that take new sessions. */
export function takesSessions(state: MemberState): boolean {
  return state === 'up' || state === 'unknown';
}

/** Active-check thresholds of one member. */
export interface Thresholds {
  readonly rise: number;
  readonly fall: number;
}

/** What one check found; `refused`: ICMP port unreachable (or a TCP reset): down at once. */
export type CheckOutcome = 'ok' | 'failed' | 'refused';

/**
 * One member's health verdicts: consecutive check results against rise/fall, passive ejections,
 * all moves through MEMBER_TRANSITIONS. Returns the new state when a verdict changed it, so the
 * pool reports each transition once.
 */
export class MemberHealth {
  #state: MemberState;
  #oks = 0;
  #fails = 0;
  /** Ejections in a row without a healthy spell between: the backoff doubles with each. */
  ejections = 0;

  constructor(
    private readonly what: string,
    /** Replaced by a reload that changes the checks. */
    public thresholds: Thresholds,
    initial: MemberState = 'unknown',
  ) {
    this.#state = initial;
  }

  get state(): MemberState {
    return this.#state;
  }

  /** One active check's result; returns the new state when it changed. */
  checked(outcome: CheckOutcome): MemberState | undefined {
    const s = this.#state;
    if (s === 'draining') return undefined;
    if (outcome === 'ok') {
      this.#fails = 0;
      this.#oks++;
      // From unknown one pass is enough (it already takes sessions); from down it takes `rise`, and
      // so from an ejection: checks that pass `rise` times end it before its backoff does.
      if ((s === 'unknown' && this.#oks >= 1) || ((s === 'down' || s === 'ejected') && this.#oks >= this.thresholds.rise)) return this.#move('up');
      return undefined;
    }
    this.#oks = 0;
    this.#fails++;
    if (s === 'down') return undefined;
    if (outcome === 'refused' || this.#fails >= this.thresholds.fall) return this.#move('down');
    return undefined;
  }

  /** Passive health saw the member fail: ejected (the caller times the backoff). */
  eject(): MemberState | undefined {
    if (this.#state !== 'up' && this.#state !== 'unknown') return undefined;
    this.ejections++;
    this.#oks = 0;
    return this.#move('ejected');
  }

  /** The ejection's backoff ended: back to taking sessions (`unknown` when active checks will judge it). */
  readmit(checked: boolean): MemberState | undefined {
    if (this.#state !== 'ejected') return undefined;
    return this.#move(checked ? 'unknown' : 'up');
  }

  /** A session worked on this member (a reply, a dial): ejections start over. */
  healthy(): void {
    this.ejections = 0;
  }

  /** Active checks were removed: a member they held down is up again. */
  unchecked(): MemberState | undefined {
    return this.#state === 'down' || this.#state === 'unknown' ? this.#move('up') : undefined;
  }

  drain(): MemberState | undefined {
    if (this.#state === 'draining') return undefined;
    return this.#move('draining');
  }

  #move(to: MemberState): MemberState {
    this.#state = moveState(MEMBER_TRANSITIONS, this.what, this.#state, to);
    this.#oks = 0;
    this.#fails = 0;
    return to;
  }
}
