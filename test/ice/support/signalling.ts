import type { IceAgent } from '../../../src/ice/agent.js';
import type { IceAgentState } from '../../../src/ice/agent-state.js';
import { formatCandidate, type IceCandidate } from '../../../src/ice/candidate.js';

/**
 * Trickle signalling between two in-process agents: each local candidate goes to the other side
 * as SDP text (so the text form is exercised too), end-of-candidates as null. `hold` keeps
 * candidates back until `release()`; `filter` drops some.
 */
export function signal(from: IceAgent, to: IceAgent, opts: { filter?: (c: IceCandidate) => boolean; hold?: boolean } = {}) {
  const held: (string | null)[] = [];
  let holding = opts.hold ?? false;
  const deliver = (c: string | null) => (holding ? held.push(c) : to.addRemoteCandidate(c));
  from.on('candidate', (c) => {
    if (!opts.filter || opts.filter(c)) deliver(formatCandidate(c));
  });
  from.on('gathering-complete', () => deliver(null));
  return {
    release() {
      holding = false;
      for (const c of held.splice(0)) to.addRemoteCandidate(c);
    },
  };
}

/** Exchanges credentials both ways and wires candidates both ways. */
export function connectPair(a: IceAgent, b: IceAgent, opts: { filter?: (c: IceCandidate) => boolean } = {}): void {
  signal(a, b, opts);
  signal(b, a, opts);
  a.setRemoteCredentials(b.localCredentials);
  b.setRemoteCredentials(a.localCredentials);
}

/** Records every state an agent enters. */
export function states(agent: IceAgent): IceAgentState[] {
  const seen: IceAgentState[] = [agent.state];
  agent.on('state', (s) => seen.push(s));
  return seen;
}
