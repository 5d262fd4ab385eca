import type { Clock } from '../core/clock.js';
import type { IceTiming } from '../ice/agent.js';
import type { IceSocket } from '../ice/bases.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import type { TurnServerConfig } from '../turn/turn-client.js';
import type { CandidateClass } from '../config/expose-config.js';
import type { AttemptOptions } from './peer-attempt.js';

/**
 * What every ICE attempt of one peer link starts from: the agent's ICE settings and its gateway
 * socket. A link passes them through unchanged; the peers manager builds them once per link.
 */
export interface PeerAttemptSettings {
  readonly clock: Clock;
  /** Read at the start of each attempt (the gateway's STUN address may change). */
  readonly stunServers: () => readonly StunPeer[];
  readonly turnServers: readonly TurnServerConfig[];
  readonly candidateClasses: readonly CandidateClass[];
  readonly icePolicy: 'all' | 'relay';
  readonly iceTiming?: Partial<IceTiming>;
  /** The agent's gateway socket, once it is bound; undefined before. */
  readonly socket: () => IceSocket | undefined;
  /** Makes the opener of a direct path's key (the gateway socket's datapath decides where it runs). */
  readonly opener?: AttemptOptions['opener'];
  /** Makes the sealer of the peer's key (likewise). */
  readonly sealer?: AttemptOptions['sealer'];
}

/** The options of attempt `id`, or undefined while the gateway socket is not bound (no attempt then). */
export function attemptOptions(s: PeerAttemptSettings, id: string, controlling: boolean): AttemptOptions | undefined {
  const socket = s.socket();
  if (!socket) return undefined;
  return {
    id, controlling, clock: s.clock, socket, stunServers: s.stunServers(), turnServers: s.turnServers,
    icePolicy: s.icePolicy, iceTiming: s.iceTiming, candidateClasses: s.candidateClasses, opener: s.opener, sealer: s.sealer,
  };
}
