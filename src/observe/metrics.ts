import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Transport } from '../core/address.js';
import type { FlowCounters, Sink } from './events.js';
import type { LiveCounters } from './live-flows.js';
import { FlowTally } from './flow-tally.js';

export interface ActiveCount {
  readonly route: string;
  readonly proto: Transport;
  /** Sessions or connections open on the route right now (RouteRuntime.active). */
  readonly active: number;
}

export interface MetricsOptions {
  /**
   * Counters of the flows open right now, polled at every scrape so long-lived flows are counted
   * before they end. Without it, bytes and packets are counted only when a flow ends.
   */
  readonly liveCounters?: () => Iterable<LiveCounters>;
  /**
   * The authoritative active count per route and protocol, read at every scrape. Without it the
   * gauge is counted from session-started/-ended events, which misses sessions that began before
   * the sink was subscribed.
   */
  readonly activeSessions?: () => Iterable<ActiveCount>;
  /** Adds prom-client's standard `process_*` and `nodejs_*` metrics to the registry. Default false. */
  readonly processMetrics?: boolean;
  /** The UDP datapath in use, read at every scrape for `sluice_datapath_info`. Default js. */
  readonly datapath?: () => 'js' | 'native';
  /** The TCP stream datapath in use: a second `sluice_datapath_info` series with `proto="tcp"`. Default js. */
  readonly streamDatapath?: () => 'js' | 'native';
  /** Registers `sluice_peer_path_changes_total` (where an agent runs: only it reports peer paths). Default false. */
  readonly peerPaths?: boolean;
  /** Emits the `datagrams-dropped` events still pending (batched by their sources), at every scrape after the live poll. */
  readonly reportDrops?: () => void;
}

export interface SluiceMetrics {
  /** Subscribe this to the EventStream. Cheap: a few label lookups per event, no I/O. */
  readonly sink: Sink;
  /**
   * Exposes the drop count of a record log (flow records, access log) as
   * `sluice_records_dropped_total{log}`. `dropped` is read at scrape time and must only grow.
   * Returns a function that stops watching (the series stays, frozen).
   */
  watchRecordLog(log: string, dropped: () => number): () => void;
  /** Counts the live deltas now. Scrapes do this themselves; exposed for tests and shutdown. */
  pollLive(): void;
}

/** Seconds; from sub-millisecond loopback dials to a 10 s dial timeout. */
const DIAL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A dial error code becomes a label value only if it looks like a code; anything else is 'other'. */
const CODE_LABEL = /^[A-Z][A-Z0-9_]{0,47}$/;

type Direction = 'from_client' | 'to_client';

/**
 * Prometheus metrics fed by the event stream, into the registry the caller owns (never the global
 * one, so two nodes in one process, or two tests, do not share series). Label values are route
 * names from the config and closed sets of reasons, so cardinality is bounded by the config;
 * client addresses never become labels. Names, types and labels: docs/metrics.md.
 *
 * Bytes and packets of a flow are counted once (flow-tally.ts): at each scrape the live flows'
 * counters are compared with what was already counted for that flow id, and the rest is counted
 * from the `session-ended` event.
 */
export function createMetrics(registry: Registry, opts: MetricsOptions = {}): SluiceMetrics {
  const registers = [registry];
  const tally = new FlowTally();
  let polledThisTurn = false;

  // A scrape calls every metric's collect() in one synchronous run; poll once per run.
  const pollOncePerScrape = () => {
    if (polledThisTurn) return;
    polledThisTurn = true;
    queueMicrotask(() => (polledThisTurn = false));
    pollLive();
  };

  const activeFromEvents = new Map<string, { route: string; proto: Transport; n: number }>();
  const active = new Gauge({
    name: 'sluice_sessions_active',
    help: 'Sessions (UDP) and connections (TCP) open right now.',
    labelNames: ['route', 'proto'] as const,
    registers,
    collect() {
      this.reset();
      if (opts.activeSessions) {
        const sums = new Map<string, ActiveCount>();
        for (const a of opts.activeSessions()) {
          const k = `${a.route}\0${a.proto}`;
          const prev = sums.get(k);
          sums.set(k, { route: a.route, proto: a.proto, active: (prev?.active ?? 0) + a.active });
        }
        for (const a of sums.values()) this.set({ route: a.route, proto: a.proto }, a.active);
      } else {
        for (const a of activeFromEvents.values()) this.set({ route: a.route, proto: a.proto }, a.n);
      }
    },
  });
  const started = new Counter({
    name: 'sluice_sessions_started_total',
    help: 'Sessions and connections whose upstream dial succeeded.',
    labelNames: ['route', 'proto'] as const,
    registers,
  });
  const ended = new Counter({
    name: 'sluice_sessions_ended_total',
    help: 'Sessions and connections that ended, by end reason.',
    labelNames: ['route', 'proto', 'reason'] as const,
    registers,
  });
  const rejected = new Counter({
    name: 'sluice_sessions_rejected_total',
    help: 'New sessions and connections refused before any upstream resource was spent, by reason.',
    labelNames: ['route', 'proto', 'reason'] as const,
    registers,
  });
  const wouldReject = new Counter({
    name: 'sluice_sessions_would_reject_total',
    help: 'Clients an observe-only rule would have refused; they were admitted.',
    labelNames: ['route', 'proto', 'reason'] as const,
    registers,
  });
  const wouldEnd = new Counter({
    name: 'sluice_sessions_would_end_total',
    help: 'Live sessions an observe-only rule would have ended after a verdict change; they went on.',
    labelNames: ['route', 'proto', 'reason'] as const,
    registers,
  });
  const reverdicts = new Counter({
    name: 'sluice_verdict_rechecks_total',
    help: 'Times live sessions were judged again because verdict inputs changed, by cause.',
    labelNames: ['cause'] as const,
    registers,
  });
  const dialErrors = new Counter({
    name: 'sluice_dial_errors_total',
    help: 'Upstream dials that failed, by error code.',
    labelNames: ['route', 'proto', 'code'] as const,
    registers,
  });
  const dialDuration = new Histogram({
    name: 'sluice_dial_duration_seconds',
    help: 'Time from accepting a client to the upstream dial succeeding or failing.',
    labelNames: ['route', 'proto', 'result'] as const,
    buckets: DIAL_BUCKETS,
    registers,
  });
  const bytes = new Counter({
    name: 'sluice_bytes_total',
    help: 'Payload bytes relayed, by direction; live flows are counted at each scrape.',
    labelNames: ['route', 'proto', 'direction'] as const,
    registers,
    collect: pollOncePerScrape,
  });
  const packets = new Counter({
    name: 'sluice_packets_total',
    help: 'Datagrams relayed (UDP only), by direction; live flows are counted at each scrape.',
    labelNames: ['route', 'proto', 'direction'] as const,
    registers,
    collect: pollOncePerScrape,
  });
  const datagramsDropped = new Counter({
    name: 'sluice_datagrams_dropped_total',
    help: 'Single datagrams dropped inside an admitted session, by reason.',
    labelNames: ['route', 'reason'] as const,
    registers,
    // Current when read: the batch's drops folded in (the live poll), then what the send budgets hold for their next report.
    collect() {
      pollOncePerScrape();
      opts.reportDrops?.();
    },
  });
  const udpIsolations = new Counter({
    name: 'sluice_udp_isolations_total',
    help: 'UDP clients given a socket of their own (change="isolated"), giving it back ("released") or refused one ("failed"), by reason.',
    labelNames: ['route', 'change', 'reason'] as const,
    registers,
  });
  const udpIsolated = new Gauge({
    name: 'sluice_udp_isolated_sockets',
    help: 'UDP clients of a route with a socket of their own now.',
    labelNames: ['route'] as const,
    registers,
  });
  new Gauge({
    name: 'sluice_datapath_info',
    help: 'The datapath in use (1 for the running kind): the UDP one without a proto label (js on dgram, or the native batched one), the TCP one with proto="tcp" (js on net, or the native splice one)',
    labelNames: ['kind', 'proto'] as const,
    registers,
    collect() {
      this.reset();
      this.set({ kind: opts.datapath?.() ?? 'js' }, 1);
      this.set({ kind: opts.streamDatapath?.() ?? 'js', proto: 'tcp' }, 1);
    },
  });
  const routeUp = new Gauge({
    name: 'sluice_route_up',
    help: '1 for each route whose listener is bound; the series goes away with the route.',
    labelNames: ['route'] as const,
    registers,
  });
  const reloads = new Counter({
    name: 'sluice_config_reloads_total',
    help: 'Config reloads, applied (ok) or refused with the running config kept (rejected).',
    labelNames: ['result'] as const,
    registers,
  });
  for (const result of ['ok', 'rejected']) reloads.inc({ result }, 0);
  const peerPathChanges = opts.peerPaths
    ? new Counter({
        name: 'sluice_peer_path_changes_total',
        help: 'A connected peer link took a path: relayed (first, or back from direct) or direct; counted from peer-path events',
        labelNames: ['peer', 'path'] as const,
        registers,
      })
    : undefined;
  /** The path each connected peer link is on, since it last went idle (bounded by the config's peers). */
  const peerPaths = new Map<string, string>();

  const recordLogs = new Map<string, { dropped: () => number; seen: number; watching: boolean }>();
  const recordsDropped = new Counter({
    name: 'sluice_records_dropped_total',
    help: 'Records a log sink dropped because its output could not keep up or failed.',
    labelNames: ['log'] as const,
    registers,
    collect() {
      for (const [log, w] of recordLogs) {
        if (!w.watching) continue;
        const now = w.dropped();
        if (now > w.seen) this.inc({ log }, now - w.seen);
        w.seen = Math.max(w.seen, now);
      }
    },
  });

  if (opts.processMetrics) collectDefaultMetrics({ register: registry });

  function addTraffic(route: string, proto: Transport, d: FlowCounters): void {
    add(bytes, route, proto, 'from_client', d.bytesFromClient);
    add(bytes, route, proto, 'to_client', d.bytesToClient);
    add(packets, route, proto, 'from_client', d.packetsFromClient);
    add(packets, route, proto, 'to_client', d.packetsToClient);
  }

  function pollLive(): void {
    if (opts.liveCounters) tally.poll(opts.liveCounters(), addTraffic);
  }

  const sink: Sink = (e) => {
    switch (e.type) {
      case 'session-started': {
        const { route, proto } = e.flow;
        started.inc({ route, proto });
        const k = `${route}\0${proto}`;
        const a = activeFromEvents.get(k);
        if (a) a.n++;
        else activeFromEvents.set(k, { route, proto, n: 1 });
        return;
      }
      case 'session-ended': {
        const { route, proto, id } = e.flow;
        ended.inc({ route, proto, reason: e.reason });
        const a = activeFromEvents.get(`${route}\0${proto}`);
        if (a && a.n > 0) a.n--;
        addTraffic(route, proto, tally.ended(id, e.counters));
        return;
      }
      case 'session-rejected':
        (e.observeOnly ? wouldReject : rejected).inc({ route: e.route, proto: e.proto, reason: e.reason });
        return;
      case 'session-would-end':
        wouldEnd.inc({ route: e.flow.route, proto: e.flow.proto, reason: e.reason });
        return;
      case 'verdicts-reapplied':
        reverdicts.inc({ cause: e.cause });
        return;
      case 'dial-ok':
        observeDial(dialDuration, e.flow.route, e.flow.proto, 'ok', e.latencyMs);
        return;
      case 'dial-error': {
        const { route, proto } = e.flow;
        dialErrors.inc({ route, proto, code: CODE_LABEL.test(e.code) ? e.code : 'other' });
        observeDial(dialDuration, route, proto, 'error', e.latencyMs);
        return;
      }
      case 'datagrams-dropped':
        if (e.count > 0) datagramsDropped.inc({ route: e.route, reason: e.reason }, e.count);
        return;
      case 'udp-isolation':
        udpIsolations.inc({ route: e.route, change: e.change, reason: e.change !== 'failed' || CODE_LABEL.test(e.reason) ? e.reason : 'other' });
        if (e.change !== 'failed') udpIsolated.inc({ route: e.route }, e.change === 'isolated' ? 1 : -1);
        return;
      case 'route-up':
        routeUp.set({ route: e.route }, 1);
        return;
      case 'route-down':
        routeUp.remove({ route: e.route });
        return;
      case 'config-reloaded':
        reloads.inc({ result: 'ok' });
        return;
      case 'config-rejected':
        reloads.inc({ result: 'rejected' });
        return;
      case 'peer-path':
        if (e.state !== 'connected') {
          if (e.state === 'idle') peerPaths.delete(e.peer);
          return;
        }
        if (!peerPathChanges || peerPaths.get(e.peer) === e.path) return;
        peerPaths.set(e.peer, e.path);
        peerPathChanges.inc({ peer: e.peer, path: e.path });
        return;
      default:
        return;
    }
  };

  return {
    sink,
    pollLive,
    watchRecordLog(log, dropped) {
      const w = { dropped, seen: 0, watching: true };
      recordLogs.set(log, w);
      recordsDropped.inc({ log }, 0);
      return () => {
        w.watching = false;
      };
    },
  };
}

function add(c: Counter<'route' | 'proto' | 'direction'>, route: string, proto: Transport, direction: Direction, n: number): void {
  if (n > 0) c.inc({ route, proto, direction }, n);
}

/** A sink that throws is detached from the stream, so a bad number is skipped rather than thrown on. */
function observeDial(h: Histogram<'route' | 'proto' | 'result'>, route: string, proto: Transport, result: 'ok' | 'error', latencyMs: number): void {
  if (Number.isFinite(latencyMs) && latencyMs >= 0) h.observe({ route, proto, result }, latencyMs / 1000);
}
