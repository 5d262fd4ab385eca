import type { Family } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';

/** The conntrack event types `conntrack -E` reports. The source asks for NEW and DESTROY only. */
export type ConntrackEventType = 'new' | 'update' | 'destroy';

/**
 * Transport protocols whose flows become records. TCP, UDP, UDP-Lite, SCTP and DCCP carry ports;
 * ICMP and ICMPv6 carry a type and code instead. Anything else is parsed as `other` and skipped.
 */
export type ConntrackProto = 'tcp' | 'udp' | 'udplite' | 'sctp' | 'dccp' | 'icmp' | 'icmpv6';

/** One direction of a connection as the kernel sees it (`struct nf_conntrack_tuple`). */
export interface ConntrackTuple {
  /** Canonical (core/address.ts `canonicalIp`). */
  readonly src: string;
  readonly dst: string;
  /** Ports for port-carrying protocols; absent otherwise. */
  readonly sport?: number;
  readonly dport?: number;
  /** ICMP(v6) type, code and identifier; absent for other protocols. */
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly icmpId?: number;
  /** Counters of this direction; present only with `nf_conntrack_acct=1`, and never in NEW events. */
  readonly packets?: number;
  readonly bytes?: number;
}

/** One parsed line of `conntrack -E -o extended,id,timestamp`. */
export interface ConntrackEvent {
  readonly type: ConntrackEventType;
  /** Wall-clock ms since the epoch at which the tool received the event (`-o timestamp`), if printed. */
  readonly timestampMs?: number;
  readonly family: Family;
  /** IANA protocol number (6, 17, 1, ...). */
  readonly protoNum: number;
  /** `other` for protocols the source does not record (GRE, unknown numbers, ...). */
  readonly proto: ConntrackProto | 'other';
  /** TCP/SCTP/DCCP state word (`ESTABLISHED`, `TIME_WAIT`, ...), if printed. */
  readonly state?: string;
  /** The conntrack id (`-o id`): a uint32 the kernel keeps for the connection's lifetime. */
  readonly id: number;
  /** Original direction: as the opener sent it (before NAT). */
  readonly orig: ConntrackTuple;
  /** Reply direction: as the answers come back (after NAT). */
  readonly reply: ConntrackTuple;
  /** Connection mark (`ct mark`), if printed; the kernel sends it only when non-zero. */
  readonly mark?: number;
  /** Seconds since the kernel created the entry (`nf_conntrack_timestamp=1`); DESTROY events carry it. */
  readonly deltaTimeS?: number;
  /** `[ASSURED]`: replies have been seen often enough for the kernel to keep the entry under pressure. */
  readonly assured: boolean;
  /** `[UNREPLIED]`: no packet has been seen in the reply direction. */
  readonly unreplied: boolean;
  /** `[USERSPACE]`: the event was caused by a program (e.g. `conntrack -D`/`-F`), not by traffic or a timeout. */
  readonly userspace: boolean;
}

/**
 * Why a line was refused. A closed set, so callers can count per reason; branch on it, never on
 * the message.
 */
export type ConntrackLineErrorReason =
  /** Empty or whitespace only. */
  | 'empty'
  /** Longer than the parser's bound (no real event line comes close). */
  | 'too-long'
  /** The `[timestamp] [TYPE] l3 n l4 n` head is not there. */
  | 'bad-head'
  /** A token is neither `key=value` nor a `[FLAG]`, or a bracket is not closed. */
  | 'bad-token'
  /** A value is not what its key allows (address, port, number range). */
  | 'bad-value'
  /** The same key twice in one place, or a third tuple. */
  | 'duplicate-field'
  /** A required field (addresses, ports, ICMP type/code, id) is missing. */
  | 'missing-field';

/**
 * A line of `conntrack -E` output that is not an event this parser understands. The parser throws
 * nothing else. Code `SLUICE_ERR_CONNTRACK_LINE` (docs/conntrack.md).
 */
export class ConntrackLineError extends SluiceError {
  override name = 'ConntrackLineError';
  declare readonly code: 'SLUICE_ERR_CONNTRACK_LINE';
  constructor(
    readonly reason: ConntrackLineErrorReason,
    message: string,
    /** Character offset in the line where the problem was seen. */
    readonly offset: number,
  ) {
    super('SLUICE_ERR_CONNTRACK_LINE', `conntrack event ${reason} at ${offset}: ${message}`);
  }
}

export function isConntrackLineError(err: unknown): err is ConntrackLineError {
  return err instanceof ConntrackLineError;
}
