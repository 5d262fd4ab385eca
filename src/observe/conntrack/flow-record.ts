import type { FlowDirection, FlowRecord } from '../flow-records.js';
import { flowUuid } from '../flow-id.js';
import type { ConntrackEvent, ConntrackProto } from './event.js';

/** Why the kernel dropped a connection entry, as far as the DESTROY event tells. */
export type ConntrackEndReason =
  /** TCP ended (FIN or RST seen; the entry was in TIME_WAIT or CLOSE). */
  | 'closed'
  /** The entry timed out (UDP, ICMP and idle TCP), or the kernel dropped it under table pressure. */
  | 'expired'
  /** A program removed it (`conntrack -D`, `conntrack -F`). */
  | 'deleted';

/**
 * A flow record from the kernel (docs/records.md, docs/conntrack.md): a FlowRecord whose `proto`
 * is a ConntrackProto (ICMP flows carry `icmpType`/`icmpCode`, their ports are 0) and whose
 * `reason` is a ConntrackEndReason.
 */
export interface ConntrackFlowRecord extends Omit<FlowRecord, 'proto' | 'reason'> {
  proto: ConntrackProto;
  icmpType?: number;
  icmpCode?: number;
  reason?: ConntrackEndReason;
}

export interface FlowRecordContext {
  readonly instanceId: string;
  readonly direction: FlowDirection;
  /** Wall ms of the record. */
  readonly time: number;
  /** Wall ms at which the flow began (for `start`, the same as `time`). */
  readonly startedAt: number;
}

/**
 * Builds the record for one NEW (`start`), UPDATE (`update`) or DESTROY (`end`) event of a
 * recordable protocol. The opener of the flow is the original tuple's source, so `client*` is
 * `orig.src`/`sport` and `upstream*` is `orig.dst`/`dport` (the address the client dialled,
 * before any DNAT). Counters: *FromClient are the original direction's, *ToClient the reply
 * direction's; rx/tx follow NetBird's mapping (ingress: rx = original, egress: rx = reply).
 * Counters are 0 without `nf_conntrack_acct`, and always 0 in `start` records.
 */
export function conntrackFlowRecord(ev: ConntrackEvent & { proto: ConntrackProto }, ctx: FlowRecordContext): ConntrackFlowRecord {
  const iso = (ms: number) => new Date(ms).toISOString();
  const counted = ev.type !== 'new';
  const fromClientBytes = counted ? (ev.orig.bytes ?? 0) : 0;
  const fromClientPackets = counted ? (ev.orig.packets ?? 0) : 0;
  const toClientBytes = counted ? (ev.reply.bytes ?? 0) : 0;
  const toClientPackets = counted ? (ev.reply.packets ?? 0) : 0;
  const ingress = ctx.direction === 'ingress';
  const icmp = ev.proto === 'icmp' || ev.proto === 'icmpv6';

  // Field order is the documented one (docs/records.md): people read these with tail -f.
  const r: ConntrackFlowRecord = {
    time: iso(ctx.time),
    event: ev.type === 'new' ? 'start' : ev.type === 'destroy' ? 'end' : 'update',
    source: 'conntrack',
    instanceId: ctx.instanceId,
    flowUuid: flowUuid(ctx.instanceId, 'conntrack', ev.id),
    direction: ctx.direction,
    flowId: ev.id,
    route: '',
    proto: ev.proto,
    clientAddr: ev.orig.src,
    clientPort: icmp ? 0 : (ev.orig.sport ?? 0),
    upstreamAddr: ev.orig.dst,
    upstreamPort: icmp ? 0 : (ev.orig.dport ?? 0),
  } as ConntrackFlowRecord;
  if (icmp) {
    r.icmpType = ev.orig.icmpType ?? 0;
    r.icmpCode = ev.orig.icmpCode ?? 0;
  }
  r.startTime = iso(ctx.startedAt);
  r.durationMs = Math.max(0, ctx.time - ctx.startedAt);
  r.bytesFromClient = fromClientBytes;
  r.bytesToClient = toClientBytes;
  r.packetsFromClient = fromClientPackets;
  r.packetsToClient = toClientPackets;
  r.rxBytes = ingress ? fromClientBytes : toClientBytes;
  r.txBytes = ingress ? toClientBytes : fromClientBytes;
  r.rxPackets = ingress ? fromClientPackets : toClientPackets;
  r.txPackets = ingress ? toClientPackets : fromClientPackets;
  if (ev.type === 'destroy') r.reason = endReason(ev);
  return r;
}

export function endReason(ev: ConntrackEvent): ConntrackEndReason {
  if (ev.userspace) return 'deleted';
  if (ev.proto === 'tcp' && (ev.state === 'TIME_WAIT' || ev.state === 'CLOSE')) return 'closed';
  return 'expired';
}
