/**
 * The states of a ConntrackSource (conntrack-source.ts; STYLE 11):
 * - `idle`: not started, or stopped (it may start again).
 * - `starting`: applying the sysctls before the first spawn.
 * - `running`: a tool process runs.
 * - `waiting`: the tool died and a restart is scheduled.
 * - `stopping`: killing the tool and restoring the sysctls.
 * - `closed`: final; `start` rejects.
 */
export type ConntrackSourceState = 'idle' | 'starting' | 'running' | 'waiting' | 'stopping' | 'closed';

const next: Record<ConntrackSourceState, readonly ConntrackSourceState[]> = {
  idle: ['starting', 'closed'],
  starting: ['running', 'waiting'],
  running: ['waiting', 'stopping'],
  waiting: ['running', 'waiting', 'stopping'],
  stopping: ['idle', 'closed'],
  closed: [],
};

/** `to`, when the table allows it from `from`; throws otherwise (a bug in the source, never input). */
export function nextSourceState(from: ConntrackSourceState, to: ConntrackSourceState): ConntrackSourceState {
  if (!next[from].includes(to)) throw new Error(`conntrack source: ${from} -> ${to}`);
  return to;
}
