import type { Clock } from '../../core/clock.js';
import type { BackoffOptions } from '../../core/backoff.js';
import type { FlowRecorder } from '../flow-records.js';
import type { DirectionOptions } from './direction.js';
import type { Sysctl } from './sysctl.js';
import type { ConntrackStatus, SpawnProcess } from './source-contract.js';

/**
 * How a ConntrackSource (conntrack-source.ts) is set up: its options (all defaulted; the
 * constructor refuses bad ones with SLUICE_ERR_CONFIG_INVALID) and what it is given (clock,
 * record sink, process and sysctl access, a lifetime). The source owns none of its deps.
 */
export interface ConntrackSourceOptions extends DirectionOptions {
  /**
   * The conntrack program and any leading words; the event arguments are appended. Default
   * `['conntrack']`. `['ip', 'netns', 'exec', 'ns1', 'conntrack']` watches another namespace
   * (`ip netns exec` execs, so the pid is still conntrack's own).
   */
  readonly command?: readonly string[];
  /** Turn `net.netfilter.nf_conntrack_acct` on while the source runs, for counters. Default true. */
  readonly accounting?: boolean;
  /** Turn `net.netfilter.nf_conntrack_timestamp` on, so end records of flows seen only at their end have a start. Default false. */
  readonly timestamps?: boolean;
  /** Netlink receive buffer (`conntrack -b`); larger loses fewer events in bursts. Default 4 MiB; 0 leaves the tool's default. */
  readonly netlinkBufferBytes?: number;
  /** Restart schedule; `resetAfterMs` (default 60 000) is how long a run must last to start again from `initialMs`. */
  readonly backoff?: BackoffOptions & { readonly resetAfterMs?: number };
  /** Start times remembered for end records (oldest forgotten first). Default 65 536. */
  readonly maxTrackedFlows?: number;
  /** How long `stop` waits after SIGTERM before SIGKILL. Default 2 000. */
  readonly stopTimeoutMs?: number;
}

export interface ConntrackSourceDeps {
  readonly clock: Clock;
  /** Where records go: the node's FlowRecorder (the same output as Sluice's own flow records). */
  readonly recorder: Pick<FlowRecorder, 'write'>;
  /** This process's instance UUID (flow-id.ts `newInstanceId`); flow UUIDs are derived under it. */
  readonly instanceId: string;
  readonly spawn?: SpawnProcess;
  /** Default: `/proc/sys` of this process's namespace. Must reach the namespace `command` watches. */
  readonly sysctl?: Sysctl;
  /** For backoff jitter. Default Math.random. */
  readonly random?: () => number;
  /** Lifecycle reports (few: per start, exit and failure, never per event). Must not throw. */
  readonly onStatus?: (status: ConntrackStatus) => void;
  /** Aborting it closes the source. */
  readonly signal?: AbortSignal;
}
