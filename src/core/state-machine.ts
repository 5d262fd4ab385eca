import { SluiceError } from './errors.js';

/**
 * A transition table: for each state, the states it may move to. A state listed in its own row
 * may be entered again (e.g. a link attached to a newer connection); a state with an empty row
 * is final.
 */
export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

/** True when `table` allows `from` -> `to`. */
export function canMove<S extends string>(table: TransitionTable<S>, from: S, to: S): boolean {
  return table[from].includes(to);
}

/**
 * The one guarded move of a state machine: returns `to`, or throws SLUICE_ERR_STATE naming the
 * machine (`what`) and the refused move. An illegal move is a bug in the caller, never bad input.
 */
export function moveState<S extends string>(table: TransitionTable<S>, what: string, from: S, to: S): S {
  if (!table[from].includes(to)) throw new SluiceError('SLUICE_ERR_STATE', `${what}: ${from} → ${to} is not a legal move`);
  return to;
}
