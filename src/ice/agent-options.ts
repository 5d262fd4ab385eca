import type { Clock } from '../core/clock.js';
import type { TurnServerConfig } from '../turn/turn-client.js';
import type { IceCandidate } from './candidate.js';
import type { SelectedPairInfo } from './channel.js';
import type { IceRole } from './check-message.js';
import type { IceAgentState } from './agent-state.js';
import { RFC7675_TIMING } from './consent.js';
import type { IceCredentials } from './credentials.js';
import { GATHER_TIMING } from './gathering.js';
import { DEFAULT_NOMINATION_TIMING } from './nomination.js';
import type { StunPeer, StunRetransmitTiming } from '../turn/stun-transaction.js';

/** Every number the agent waits by, in ms. Functional defaults; tests shrink nothing but the clock. */
export interface IceTiming {
  /** Ta: one check every Ta ms (RFC 8445 §14.2: 50 ms). */
  readonly taMs: number;
  /** Retransmission of checks; a pair fails when its check times out (default 0, 0.5, 1.5, 3.5, 7.5 s; failed at 9.5 s). */
  readonly check: StunRetransmitTiming;
  /** Consent checks give up before the next one is due (default 0, 0.5, 1.5 s; lost at 3.5 s). */
  readonly consentCheck: StunRetransmitTiming;
  /** Retransmission of Binding requests to STUN servers while gathering (given up after 5.5 s). */
  readonly gather: StunRetransmitTiming;
  /** Grace before nominating the best valid pair while better ones are still being checked. */
  readonly directNominationDelayMs: number;
  readonly relayNominationDelayMs: number;
  /** RFC 7675: a check every intervalMs (randomised 0.8-1.2×), `disconnected` after staleMs, `failed` after expireMs. */
  readonly consentIntervalMs: number;
  readonly consentStaleMs: number;
  readonly consentExpireMs: number;
  /** From `checking` to `failed` when no pair gets selected. */
  readonly connectTimeoutMs: number;
}

export const DEFAULT_ICE_TIMING: IceTiming = Object.freeze({
  taMs: 50,
  check: { rtoMs: 500, maxTransmissions: 5, lastWaitFactor: 4 },
  consentCheck: { rtoMs: 500, maxTransmissions: 3, lastWaitFactor: 4 },
  gather: GATHER_TIMING,
  directNominationDelayMs: DEFAULT_NOMINATION_TIMING.directDelayMs,
  relayNominationDelayMs: DEFAULT_NOMINATION_TIMING.relayDelayMs,
  consentIntervalMs: RFC7675_TIMING.intervalMs,
  consentStaleMs: RFC7675_TIMING.staleMs,
  consentExpireMs: RFC7675_TIMING.expireMs,
  connectTimeoutMs: 30_000,
});

export type IcePolicy = 'all' | 'relay';

export interface IceAgentOptions {
  readonly role: IceRole;
  readonly clock: Clock;
  /** Default: random (8-character ufrag, 24-character pwd). */
  readonly credentials?: IceCredentials;
  /** Default: random 64 bits. */
  readonly tieBreaker?: bigint;
  readonly stunServers?: readonly StunPeer[];
  /** A TURN allocation per server on every socket; the agent owns these clients and deletes them on close. */
  readonly turnServers?: readonly TurnServerConfig[];
  /** 'relay': only relayed candidates are gathered, advertised and paired (WebRTC's iceTransportPolicy). */
  readonly policy?: IcePolicy;
  readonly timing?: Partial<IceTiming>;
  /** [0, 1), for the consent jitter. Default Math.random. */
  readonly random?: () => number;
  /** Remote candidates kept, signalled and peer-reflexive together. Default 64. */
  readonly maxRemoteCandidates?: number;
  /** Default 100 (RFC 8445 §6.1.2.5). */
  readonly maxPairs?: number;
  /** Aborting closes the agent. */
  readonly signal?: AbortSignal;
  /**
   * Which remote addresses this agent may send checks and data to, signalled and peer-reflexive
   * alike (Sluice's rule: addresses from the network reach private, loopback or link-local space
   * only when the config allows). Checks from elsewhere are still answered (a reply to an
   * authenticated request), but never paired. Default: every address.
   */
  readonly remoteAllowed?: (address: string, port: number) => boolean;
}

export interface IceAgentEvents {
  /** A local candidate to send to the peer (host, srflx, relay; peer-reflexive ones are never signalled). */
  candidate: [IceCandidate];
  /** Local end-of-candidates; `errors` lists what failed (a silent STUN server, a refused allocation). */
  'gathering-complete': [{ readonly errors: readonly Error[] }];
  /** (new state, previous state) */
  state: [IceAgentState, IceAgentState];
  'selected-pair': [SelectedPairInfo];
}

/** Takes one datagram received on a socket; true when the agent used it, false to leave it to others. */
export type DatagramIngress = (buf: Buffer, from: StunPeer) => boolean;
