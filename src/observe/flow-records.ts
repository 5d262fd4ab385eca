import type { Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { zeroCounters, type FlowCounters, type FlowRef, type Sink } from './events.js';
import { flowUuid, type FlowSource } from './flow-id.js';
import type { LineWriter } from './line-writer.js';
import type { LiveFlow, LiveFlows } from './live-flows.js';
import { peerPathTracker, type PeerFlowLookup, type PeerPathKind } from './peer-path.js';
import { counterFields, flowFields, type FlowFields, type FlowProto } from './record-fields.js';

/** Ingress: opened from outside towards a service (routes). Egress: opened by a local client outwards. */
export type FlowDirection = 'ingress' | 'egress';

/**
 * One flow record (docs/records.md). Names shared with the access log mean the same thing there:
 * `client*` is the side that opened the flow, `upstream*` the side it reached, `flowId` the local
 * flow number. `rx*`/`tx*` are the same counters from this host's point of view (NetBird's mapping):
 * ingress rx = from client, egress rx = to client.
 */
export interface FlowRecord extends Omit<FlowFields, 'proto'>, FlowCounters {
  /** Sluice's own flows: tcp or udp; kernel flows (conntrack) add the others. */
  proto: FlowProto;
  /** ICMP and ICMPv6 kernel flows only (their ports are 0). */
  icmpType?: number;
  icmpCode?: number;
  time: string;
  event: 'start' | 'update' | 'end';
  source: FlowSource;
  /** The UUID of the process run that wrote the record (flowId restarts at 1 with each run). */
  instanceId: string;
  flowUuid: string;
  direction: FlowDirection;
  startTime: string;
  durationMs: number;
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
  /** End reason: an EndReason for Sluice's flows, `closed`/`expired`/`deleted` for kernel flows. */
  reason?: string;
  /** Datagrams of the session the tunnel's send budget dropped, by reason (docs/expose.md); absent when none. */
  dropped?: Partial<Record<string, number>>;
  /** Sessions of `connect/` routes (update, end): what carried them toward the peer (docs/records.md). */
  peerPath?: PeerPathKind;
  peerDatagramsDirect?: number;
  peerDatagramsRelayed?: number;
}

export interface FlowRecordOptions {
  readonly clock: Clock;
  /** This process's UUID (`newInstanceId()`); flow UUIDs are derived under it. */
  readonly instanceId: string;
  /** Period of `update` records for flows open longer than half of it. Default 60 000; 0 turns updates off. */
  readonly updateIntervalMs?: number;
  /** The flows open right now with their counters; without it there are no `update` records. */
  readonly liveFlows?: LiveFlows;
  /** Direction of a flow; routes are ingress (the default), agent-initiated flows will be egress. */
  readonly direction?: (flow: FlowRef) => FlowDirection;
  /** The peer flow of a connect session, so its update and end records say which path carried it. */
  readonly peerFlow?: PeerFlowLookup;
}

export interface FlowRecorder {
  /** Subscribe this to the EventStream: `start` on session-started, `end` on session-ended. */
  readonly sink: Sink;
  /** Writes a record built elsewhere (the conntrack source) through the same output. */
  write(record: FlowRecord): void;
  /** Stops the update timer. Does not close the output; its owner does. Idempotent. */
  stop(): void;
}

/** Flows turned into `update` records per turn of the event loop, so a big table never stalls the relay. */
const UPDATE_SLICE = 1000;

/**
 * Flow records: `start`, `update` every `updateIntervalMs` while the flow lives, and `end`, one
 * JSON line each, in the spirit of NetBird's flow events. The access log stays the per-session
 * summary. Nothing is kept per flow: the UUID is recomputed per record and updates come from
 * `liveFlows()`, so the recorder cannot leak flows whose end it never saw.
 *
 * A flow gets its first update at the first tick at which it is at least half an interval old,
 * then one per tick: updates are `updateIntervalMs` apart, and the first comes 0.5 to 1.5
 * intervals after the start. Short flows (under half an interval) get only start and end.
 */
export function createFlowRecords(out: LineWriter, opts: FlowRecordOptions): FlowRecorder {
  const { clock, instanceId } = opts;
  const interval = opts.updateIntervalMs ?? 60_000;
  const directionOf = opts.direction ?? (() => 'ingress');
  const iso = (ms: number) => new Date(ms).toISOString();
  const write = (r: FlowRecord) => out.write(JSON.stringify(r) + '\n');
  const peers = peerPathTracker(opts.peerFlow);

  const record = (
    event: FlowRecord['event'],
    at: number,
    flow: FlowRef,
    upstream: Endpoint | undefined,
    startedAt: number,
    durationMs: number,
    c: FlowCounters,
  ): FlowRecord => {
    const direction = directionOf(flow);
    const [rx, tx] = direction === 'ingress' ? ['FromClient', 'ToClient'] as const : ['ToClient', 'FromClient'] as const;
    return {
      time: iso(at),
      event,
      source: 'sluice',
      instanceId,
      flowUuid: flowUuid(instanceId, 'sluice', flow.id),
      direction,
      ...flowFields(flow, upstream),
      startTime: iso(startedAt),
      durationMs,
      ...counterFields(c),
      rxBytes: c[`bytes${rx}`],
      txBytes: c[`bytes${tx}`],
      rxPackets: c[`packets${rx}`],
      txPackets: c[`packets${tx}`],
    };
  };

  let timer: Timer | undefined;
  let slice: Timer | undefined;
  let stopped = false;

  const tick = () => {
    if (slice || !opts.liveFlows) return; // the previous tick is still writing: skip, do not pile up
    const now = clock.wallNow();
    const due: LiveFlow[] = [];
    for (const f of opts.liveFlows()) if (f.state === 'open' && now - f.startedAt >= interval / 2) due.push(f);
    const writeFrom = (from: number) => {
      slice = undefined;
      if (stopped) return;
      const to = Math.min(due.length, from + UPDATE_SLICE);
      for (let i = from; i < to; i++) {
        const f = due[i]!;
        const r = record('update', now, f, f.upstream, f.startedAt, Math.max(0, now - f.startedAt), f);
        write(Object.assign(r, peers.current(f)));
      }
      if (to < due.length) slice = clock.setTimeout(() => writeFrom(to), 0);
    };
    writeFrom(0);
  };
  if (interval > 0 && opts.liveFlows) timer = clock.setInterval(tick, interval);

  const sink: Sink = (e) => {
    switch (e.type) {
      case 'session-started': {
        // The event marks the dial's completion; the flow began at accept.
        peers.started(e.flow);
        write(record('start', e.at, e.flow, e.upstream, e.startedAt, Math.max(0, e.at - e.startedAt), zeroCounters()));
        return;
      }
      case 'session-ended': {
        const r = record('end', e.at, e.flow, e.upstream, e.startedAt, e.durationMs, e.counters);
        r.reason = e.reason;
        if (e.dropped) r.dropped = e.dropped;
        write(Object.assign(r, peers.ended(e.flow)));
        return;
      }
      default:
        return;
    }
  };

  return {
    sink,
    write,
    stop() {
      stopped = true;
      timer?.cancel();
      slice?.cancel();
      timer = slice = undefined;
    },
  };
}
