import type { Endpoint } from '../../core/address.js';
import type { StreamDatapath } from '../../datapath/stream-datapath.js';
import type { DialedConn } from '../direct/socket-dial.js';
import type { DatagramChannel, DatagramReceiver, DialedStream, DialOptions, OpenOptions } from '../dialer.js';
import type { CheckOutcome } from './member-state.js';

/**
 * How one member is reached and checked. A host:port member (direct-member.ts) has all of them;
 * another kind (an agent's exposed service) gives what it can. A way that is absent makes the
 * member unusable for that kind of flow (a pool of UDP routes needs `open`, of TCP routes `dial`).
 */
export interface MemberWays {
  /** Opens a stream to this member; the same contract as StreamDialer.dial. */
  dial?(opts: DialOptions): Promise<DialedStream>;
  /** The same dial as a connection of the route's stream datapath; undefined when this member cannot. */
  dialConn?(opts: DialOptions, datapath: StreamDatapath): Promise<DialedConn> | undefined;
  /** Opens a datagram channel to this member; the same contract as DatagramDialer.open. */
  open?(receiver: DatagramReceiver, opts: OpenOptions): Promise<DatagramChannel>;
  /**
   * One active check. Must settle by itself once `signal` aborts (the pool aborts it at the
   * check's timeout) and send only to this member.
   */
  probe?(signal: AbortSignal): Promise<CheckOutcome>;
}

/** One configured member of a pool. */
export interface MemberSpec {
  /**
   * Identity across reloads and on every gateway of a fleet (source hash is keyed on it): a
   * canonical `ip:port` for a host:port member, `agent/service` for an agent's service.
   */
  readonly key: string;
  /** What the API, status and the `member` metric label show (bounded by the config). */
  readonly label: string;
  /** Positive; a member with weight 2 gets twice the sessions of one with weight 1. */
  readonly weight: number;
  /** Used only while no primary member takes sessions. */
  readonly backup: boolean;
  /** Where sessions of this member end up, when it is one address (for the records' `upstream`). */
  readonly remote?: Endpoint;
  readonly ways: MemberWays;
}
