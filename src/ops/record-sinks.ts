import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import type { SluiceConfig } from '../config/types.js';
import type { RouteRuntime } from '../listen/route.js';
import type { AgentStatus } from './agent-status.js';
import type { PeerFlow } from '../agent/peer-flow.js';
import { accessLogSink } from '../observe/access-log.js';
import type { ConntrackSource, ConntrackSourceDeps } from '../observe/conntrack/index.js';
import { conntrackSourceFrom } from '../observe/conntrack/from-config.js';
import type { EventStream, FlowRef } from '../observe/events.js';
import { createFlowRecords, type FlowRecorder } from '../observe/flow-records.js';
import { createMetrics, type SluiceMetrics } from '../observe/metrics.js';
import { openRecordOutput } from '../observe/record-output.js';
import { RotatingFileWriter, type RecordWriter } from '../observe/rotating-file.js';
import { registerAdminAuthMetrics } from '../admin/admin-metrics.js';
import type { LoginThrottle } from '../admin/login-throttle.js';
import { registerPeerMetrics } from './peer-metrics.js';
import { registerPoolMetrics, type PoolReading } from './pool-metrics.js';
import { OFF, Rebuilt } from './rebuilt.js';
import { reportPendingDrops } from '../upstream/agent/send-budget.js';

export interface RecordSinksDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly log: Logger;
  readonly instanceId: string;
  /** Every listener with sessions (routes, published services, connect listeners). */
  readonly routes: () => readonly RouteRuntime[];
  readonly agent: () => AgentStatus | undefined;
  readonly peerFlow: (flow: FlowRef) => PeerFlow | undefined;
  readonly datapath: () => 'js' | 'native';
  /** The TCP stream datapath, for `sluice_datapath_info{proto="tcp"}`. */
  readonly streamDatapath: () => 'js' | 'native';
  /** Wrong admin credentials, counted on /metrics. */
  readonly throttle: LoginThrottle;
  /** Pooled routes' members, for the pool families on /metrics (docs/pools.md). */
  readonly pools?: () => readonly PoolReading[];
  /** Test seams for the conntrack source (a fake `conntrack`, another namespace's sysctls). */
  readonly conntrack?: Pick<ConntrackSourceDeps, 'spawn' | 'sysctl' | 'random'>;
}

/** How long `stop` waits for an output to flush (a stalled stdout reader may never drain). */
const FLUSH_DEADLINE_MS = 2_000;
/**
 * Files are written in batches gathered over this long: one write per line costs a thread-pool
 * round trip each, which cut TCP connections per second by more than half with every sink on.
 */
const FILE_LINGER_MS = 20;
const MAX_BUFFER_BYTES = 16 * 1024 * 1024;

interface OutputPart {
  readonly output: string;
  readonly writer: RecordWriter;
  readonly unsubscribe: () => void;
}
interface FlowLogPart extends OutputPart {
  readonly recorder: FlowRecorder;
}
interface MetricsPart {
  readonly registry: Registry;
  readonly metrics: SluiceMetrics;
  readonly unsubscribe: () => void;
}

/**
 * The event stream's record sinks, built from the config and swapped on reload: the access log,
 * flow records (with the conntrack source writing through the same recorder) and the Prometheus
 * metrics. Each is rebuilt only when its own keys change (ops/rebuilt.ts). Metrics exist while
 * `admin` is configured: /metrics on the admin listener is their only reader.
 */
export class RecordSinks {
  readonly #deps: RecordSinksDeps;
  readonly #accessLog: Rebuilt<OutputPart>;
  readonly #flowLog: Rebuilt<FlowLogPart>;
  readonly #conntrack = new Rebuilt<ConntrackSource>((s) => s.close());
  readonly #metrics = new Rebuilt<MetricsPart>((m) => m.unsubscribe());
  /** prom-client's process_* and nodejs_* collectors, in their own registry so a reload can drop them. */
  readonly #process = new Rebuilt<Registry>((r) => r.clear());
  #unwatchDrops: (() => void)[] = [];
  /** Closing outputs that were swapped out; `stop` waits for them. */
  #flushing: Promise<unknown> = Promise.resolve();

  constructor(deps: RecordSinksDeps) {
    this.#deps = deps;
    const closeOutput = (p: OutputPart) => {
      p.unsubscribe();
      this.#closeLater(() => p.writer.close());
    };
    this.#accessLog = new Rebuilt(closeOutput);
    this.#flowLog = new Rebuilt<FlowLogPart>((p) => {
      p.recorder.stop();
      closeOutput(p);
    });
  }

  /** The metrics registry (without the process collectors), while metrics are on. */
  get registry(): Registry | undefined {
    return this.#metrics.current?.registry;
  }

  get conntrack(): ConntrackSource | undefined {
    return this.#conntrack.current;
  }

  /** Applies a validated config (undefined: everything off). Parts whose keys did not change are left alone. */
  async apply(config: SluiceConfig | undefined): Promise<void> {
    await this.#metrics.apply(config?.admin !== undefined ? 'on' : OFF, () => this.#buildMetrics(config!));
    await this.#process.apply(this.registry && config?.metrics.process ? 'on' : OFF, () => {
      const r = new Registry();
      collectDefaultMetrics({ register: r });
      return r;
    });
    const access = config?.accessLog.output ?? OFF;
    await this.#accessLog.apply(access, () => this.#buildAccessLog(access));
    const f = config?.flowLog;
    await this.#flowLog.apply(f && f.output !== OFF ? JSON.stringify(f) : OFF, () => this.#buildFlowLog(f!));
    const c = config?.conntrack;
    await this.#conntrack.apply(c?.enabled ? JSON.stringify(c) : OFF, () => this.#startConntrack(c!));
    this.#watchDrops();
  }

  /** Final: stops conntrack, flushes and closes the outputs. */
  async stop(): Promise<void> {
    // Conntrack first: it writes through the flow log, which must still be open for its last records.
    await this.#conntrack.close();
    await this.apply(undefined);
    await this.#flushing;
  }

  /** The body of /metrics while metrics are on. */
  async exposition(): Promise<{ contentType: string; body: string } | undefined> {
    const m = this.#metrics.current;
    if (!m) return undefined;
    let body = await m.registry.metrics();
    const p = this.#process.current;
    if (p) body += await p.metrics();
    return { contentType: m.registry.contentType, body };
  }

  /** Outputs that cannot write right now, for /api/health. */
  problems(): string[] {
    const problems: string[] = [];
    for (const [key, part] of [
      ['accessLog.output', this.#accessLog.current],
      ['flowLog.output', this.#flowLog.current],
    ] as const) {
      const failure = part?.writer.failure;
      if (part && failure !== undefined) problems.push(`${key} ${part.output}: ${failure} (records are dropped)`);
    }
    return problems;
  }

  /** What /api/health shows about the sinks. */
  status(): Record<string, unknown> {
    const access = this.#accessLog.current;
    const flow = this.#flowLog.current;
    const conntrack = this.#conntrack.current;
    return {
      accessLog: access ? { output: access.output, dropped: access.writer.dropped } : { output: OFF },
      flowLog: flow ? { output: flow.output, written: flow.writer.written, dropped: flow.writer.dropped } : { output: OFF },
      conntrack: conntrack ? { state: conntrack.state, pid: conntrack.pid, stats: conntrack.stats } : { state: OFF },
      metrics: this.registry ? { process: this.#process.current !== undefined } : OFF,
    };
  }

  #closeLater(close: () => Promise<void>): void {
    let timer: { cancel(): void } | undefined;
    const deadline = new Promise<void>((resolve) => (timer = this.#deps.clock.setTimeout(resolve, FLUSH_DEADLINE_MS)));
    const done = Promise.race([close().catch(() => {}), deadline]).finally(() => timer?.cancel());
    this.#flushing = Promise.all([this.#flushing, done]);
  }

  #buildMetrics(config: SluiceConfig): MetricsPart {
    const { routes, agent, events } = this.#deps;
    const registry = new Registry();
    const metrics = createMetrics(registry, {
      // The agent's UDP sessions toward its local services are counted live too (route `<agent>/<service>`).
      liveCounters: () => [...routes().flatMap((r) => r.sessions()), ...(agent()?.udpSessions() ?? [])],
      activeSessions: () => [...routes().map((r) => ({ route: r.name, proto: r.config.listen.transport, active: r.active })), ...(agent()?.activeCounts() ?? [])],
      datapath: this.#deps.datapath,
      streamDatapath: this.#deps.streamDatapath,
      peerPaths: config.agent !== undefined,
      reportDrops: reportPendingDrops,
    });
    // Peer families only where an agent runs (`agent:` needs a restart to come or go).
    const peerMetrics = config.agent ? registerPeerMetrics(registry, agent, this.#deps.peerFlow) : undefined;
    registerAdminAuthMetrics(registry, this.#deps.throttle.counters);
    const pools = this.#deps.pools;
    if (pools) registerPoolMetrics(registry, pools);
    const unsubscribe = [events.subscribe(metrics.sink), ...(peerMetrics ? [events.subscribe(peerMetrics.sink)] : [])];
    // The drop counters point at whichever outputs are current (#watchDrops).
    this.#unwatchDrops = [];
    return { registry, metrics, unsubscribe: () => unsubscribe.forEach((u) => u()) };
  }

  /** (Re)points sluice_records_dropped_total at the current outputs. */
  #watchDrops(): void {
    this.#unwatchDrops.forEach((u) => u());
    this.#unwatchDrops = [];
    const m = this.#metrics.current?.metrics;
    if (!m) return;
    const access = this.#accessLog.current?.writer;
    const flow = this.#flowLog.current?.writer;
    if (access) this.#unwatchDrops.push(m.watchRecordLog('access', () => access.dropped));
    if (flow) this.#unwatchDrops.push(m.watchRecordLog('flow', () => flow.dropped));
  }

  #buildAccessLog(output: string): OutputPart {
    const { clock, events, instanceId, peerFlow } = this.#deps;
    // The file (appended, never rotated) through the batching writer; stdout/stderr through pino's.
    const onError = this.#failureLogger('accessLog.output', output, 'access log');
    const writer =
      output === 'stdout' || output === 'stderr'
        ? openRecordOutput(output, { maxBufferBytes: MAX_BUFFER_BYTES, onError })
        : new RotatingFileWriter(output, { maxBytes: Number.MAX_SAFE_INTEGER, maxFiles: 0, maxBufferBytes: MAX_BUFFER_BYTES, lingerMs: FILE_LINGER_MS, clock, onError });
    return { output, writer, unsubscribe: events.subscribe(accessLogSink(writer, clock, { peerFlow, instanceId })) };
  }

  #buildFlowLog(f: NonNullable<SluiceConfig['flowLog']>): FlowLogPart {
    const { clock, events, instanceId, peerFlow, routes } = this.#deps;
    const writer = openRecordOutput(f.output, { maxBytes: f.maxBytes, maxFiles: f.maxFiles, lingerMs: FILE_LINGER_MS, clock, onError: this.#failureLogger('flowLog.output', f.output, 'flow log') });
    const recorder = createFlowRecords(writer, { clock, instanceId, updateIntervalMs: f.updateIntervalMs, liveFlows: () => routes().flatMap((r) => r.sessions()), peerFlow });
    return { output: f.output, writer, recorder, unsubscribe: events.subscribe(recorder.sink) };
  }

  async #startConntrack(c: NonNullable<SluiceConfig['conntrack']>): Promise<ConntrackSource> {
    const { clock, log, instanceId } = this.#deps;
    const source = conntrackSourceFrom(c, {
      clock,
      log,
      instanceId,
      // Through whatever flow log is current, so a flowLog change does not restart the tool.
      recorder: { write: (r) => this.#flowLog.current?.recorder.write(r) },
      ...this.#deps.conntrack,
    });
    await source.start();
    return source;
  }

  /**
   * One error line when an output starts failing (the writers call it once per failure spell);
   * meanwhile records are dropped and counted, and /api/health says `degraded`.
   */
  #failureLogger(key: string, output: string, what: string): (err: unknown) => void {
    return (err) => this.#deps.log.error({ key, output, err: err instanceof Error ? err.message : String(err) }, `${what} output failing; records are dropped until it works again`);
  }
}
