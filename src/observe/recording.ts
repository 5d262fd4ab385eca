import { sluiceVersion } from '../core/version.js';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { formatHostPort, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { SluiceConfig } from '../config/types.js';
import type { AdminConfig } from '../config/observe-schema.js';
import type { RouteRuntime } from '../listen/route.js';
import { AdminServer } from '../admin/admin-server.js';
import { registerAdminAuthMetrics } from '../admin/admin-metrics.js';
import { loadAdminTls } from '../admin/admin-tls.js';
import { LoginThrottle } from '../admin/login-throttle.js';
import { LiveHub } from '../admin/live-hub.js';
import { RecentActivity } from '../admin/recent.js';
import { SourceActivity } from '../admin/source-activity.js';
import { RouteTraffic } from '../admin/route-traffic.js';
import type { RouteView } from '../admin/views.js';
import type { BanList, CrowdsecBans } from '../admin/bans-api.js';
import { agentStatusView } from '../agent/agent-view.js';
import type { Agent } from '../agent/agent.js';
import { gatewayPeersView, peerFlowOf, peerSummary, peerView, type GatewayPeerSource } from '../agent/peer-view.js';
import { accessLogSink } from './access-log.js';
import type { ConntrackSource, ConntrackSourceDeps, ConntrackStats } from './conntrack/index.js';
import { conntrackSourceFrom } from './conntrack/from-config.js';
import type { EventStream } from './events.js';
import { newInstanceId } from './flow-id.js';
import { createFlowRecords, type FlowRecorder } from './flow-records.js';
import { createMetrics, type SluiceMetrics } from './metrics.js';
import type { FlowRef } from './events.js';
import { registerPeerMetrics } from './peer-metrics.js';
import { ServedRoutes, type PublishedSource } from './served-routes.js';
import { openRecordOutput } from './record-output.js';
import { RotatingFileWriter, type RecordWriter } from './rotating-file.js';

export interface RecordingDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  /** The process log: output failures, conntrack status, the admin address. Never a token. */
  readonly log: Logger;
  /** The node's routes right now (empty before the node has started). */
  readonly routes: () => readonly RouteRuntime[];
  /** Which UDP datapath moves datagrams (issue 8): shown in /api/health and as `sluice_datapath_info`. */
  readonly datapath?: () => 'js' | 'native';
  /** Which stream datapath carries TCP routes: `streamDatapath` in /api/health, `sluice_datapath_info{proto="tcp"}`. */
  readonly streamDatapath?: () => 'js' | 'native';
  /** Container discovery's state, label routes and label problems, for /api/health (undefined without `docker:`). */
  readonly containers?: () => unknown;
  /**
   * The gateway and agent of `gateway:` / `agent:` (App.exposure), read lazily: /api/peers, the
   * peer metrics, `peerPath` in records, and the agent's connect listeners beside the node's routes.
   */
  /** The ban list behind /api/bans; undefined before it started. */
  readonly bans?: () => BanList | undefined;
  /** CrowdSec's decisions, listed by /api/bans beside the ban list; undefined without a `crowdsec:` section. */
  readonly crowdsecBans?: () => CrowdsecBans | undefined;
  readonly exposure?: () => { readonly gateway?: (GatewayPeerSource & PublishedSource) | undefined; readonly agent?: Agent | undefined } | undefined;
  /** This process's UUID for flow UUIDs; a fresh one by default. */
  readonly instanceId?: string;
  /** The ban state of a source key for /api/sources (filled when bans run); absent = no bans, `ban: null`. */
  readonly banState?: (source: string) => unknown;
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

interface AccessLogPart {
  readonly output: string;
  readonly writer: RecordWriter;
  readonly unsubscribe: () => void;
}
interface FlowLogPart {
  readonly key: string;
  readonly output: string;
  readonly writer: RecordWriter;
  readonly recorder: FlowRecorder;
  readonly unsubscribe: () => void;
}
interface MetricsPart {
  readonly registry: Registry;
  readonly metrics: SluiceMetrics;
  readonly unsubscribe: () => void;
  unwatch: { access?: () => void; flow?: () => void };
  /** prom-client's process_* and nodejs_* collectors, in their own registry so a reload can drop them. */
  process: Registry | undefined;
}
interface ConntrackPart {
  readonly key: string;
  readonly source: ConntrackSource;
}

/**
 * Every sink of the event stream, built from the config and swapped on reload (issue 4): the
 * access log, flow records (with the conntrack source writing through the same recorder), the
 * Prometheus metrics, and the admin listener with what it shows (recent flows and denials, the
 * live stream). Each part is rebuilt only when its own keys change, so a reload that touches a
 * route does not reopen a file or reset a counter.
 *
 * Metrics exist while `admin` is configured: /metrics on the admin listener is their only reader.
 * Contract: `apply` and `stop` are called one at a time (App serialises reloads); `stop` is final.
 */
export class Recording {
  readonly instanceId: string;
  readonly recent = new RecentActivity();
  /** Per-source activity over recent windows, for /api/sources (admin/source-activity.ts). */
  readonly sources: SourceActivity;
  readonly live: LiveHub;
  /** Per-route traffic for /api/routes; subscribed while the admin listener runs. */
  readonly traffic: RouteTraffic;
  readonly #deps: RecordingDeps;
  readonly #served: ServedRoutes;
  readonly #startedAt: number;
  readonly #version: string;
  #accessLog: AccessLogPart | undefined;
  #flowLog: FlowLogPart | undefined;
  #metrics: MetricsPart | undefined;
  #conntrack: ConntrackPart | undefined;
  #admin: AdminServer | undefined;
  #adminViews: (() => void) | undefined;
  /** Wrong admin credentials per source; outlives listener and token changes, so a reload does not reset a guesser. */
  readonly #throttle: LoginThrottle;
  /** The port the admin listener got (port 0 in the config keeps it across a TLS change). */
  #adminPort: number | undefined;
  #stopped = false;

  private constructor(deps: RecordingDeps) {
    this.#deps = deps;
    this.instanceId = deps.instanceId ?? newInstanceId();
    this.#startedAt = deps.clock.wallNow();
    this.#version = sluiceVersion();
    this.#served = new ServedRoutes({ routes: deps.routes, gateway: () => deps.exposure?.()?.gateway, agent: () => this.#agent() });
    this.live = new LiveHub({ clock: deps.clock, routes: () => this.#routes() });
    this.traffic = new RouteTraffic(() => this.#routes());
    this.#throttle = new LoginThrottle(deps.clock);
    this.sources = new SourceActivity(deps.clock, deps.banState);
  }

  #agent(): Agent | undefined {
    return this.#deps.exposure?.()?.agent;
  }

  #routes(): readonly RouteRuntime[] {
    return this.#served.all();
  }

  /** The body of `GET /api/routes` (docs/admin.md). */
  routeViews(): RouteView[] {
    return this.#served.views(this.traffic);
  }

  /** The peer flow behind a connect session, for `peerPath` in records and the peer metrics. */
  readonly #peerFlow = (flow: FlowRef) => peerFlowOf(this.#agent(), flow);

  /** The body of `GET /api/peers` (docs/admin.md). */
  peers(): Record<string, unknown> {
    const x = this.#deps.exposure?.();
    return { ...peerView(x?.agent, this.#deps.clock.now()), gateway: x?.gateway ? gatewayPeersView(x.gateway) : null };
  }

  /**
   * Builds every sink the config asks for. Call it before the node starts, so `route-up` and the
   * first sessions are seen. Throws SluiceError SLUICE_ERR_BIND when the admin listener cannot
   * bind; nothing is left running then.
   */
  static async start(config: SluiceConfig, deps: RecordingDeps): Promise<Recording> {
    const r = new Recording(deps);
    r.#deps.log.info({ instanceId: r.instanceId }, 'recording instance');
    try {
      await r.apply(config);
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }

  /** The admin listener's bound address, while it runs. */
  get adminAddress(): Endpoint | undefined {
    return this.#admin?.address;
  }

  /** True while the admin listener speaks HTTPS (`admin.tls`). */
  get adminTls(): boolean {
    return this.#admin?.secure ?? false;
  }

  /** The metrics registry (without the process collectors), while metrics are on. */
  get registry(): Registry | undefined {
    return this.#metrics?.registry;
  }

  /**
   * Applies a validated config. Parts whose keys did not change are left alone. A new admin
   * address is bound before the old listener closes; if it cannot bind, the old one stays, the
   * other parts are still applied, and the bind error is thrown at the end.
   */
  async apply(config: SluiceConfig): Promise<void> {
    if (this.#stopped) return;
    this.#applyMetrics(config);
    let adminError: unknown;
    try {
      await this.#applyAdmin(config.admin, config.gateway);
    } catch (err) {
      adminError = err;
    }
    this.#applyAccessLog(config.accessLog.output);
    await this.#applyFlowLog(config);
    await this.#applyConntrack(config);
    if (adminError !== undefined) throw adminError;
  }

  /** What /api/health shows about the recording side. */
  status(): Record<string, unknown> {
    const routes = this.#routes();
    const agent = this.#agent();
    const gateway = this.#served.gatewaySummary();
    const peers = peerSummary(agent);
    const problems = this.#problems();
    return {
      ...(problems.length > 0 ? { status: 'degraded', problems } : {}),
      version: this.#version,
      instanceId: this.instanceId,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeMs: Math.max(0, this.#deps.clock.wallNow() - this.#startedAt),
      routes: routes.length,
      activeSessions: routes.reduce((n, r) => n + r.active, 0),
      datapath: this.#deps.datapath?.() ?? 'js',
      streamDatapath: this.#deps.streamDatapath?.() ?? 'js',
      ...(this.#deps.containers?.() !== undefined ? { containers: this.#deps.containers!() } : {}),
      accessLog: this.#accessLog ? { output: this.#accessLog.output, dropped: this.#accessLog.writer.dropped } : { output: 'off' },
      flowLog: this.#flowLog ? { output: this.#flowLog.output, written: this.#flowLog.writer.written, dropped: this.#flowLog.writer.dropped } : { output: 'off' },
      conntrack: this.#conntrack ? { state: this.#conntrack.source.state, pid: this.#conntrack.source.pid, stats: this.#conntrack.source.stats } : { state: 'off' },
      metrics: this.#metrics ? { process: this.#metrics.process !== undefined } : 'off',
      ...(peers ? { peers } : {}),
      ...(gateway ? { gateway } : {}),
      ...(agent ? { agent: agentStatusView(agent) } : {}),
    };
  }

  /** The conntrack source's counters, while it runs (tests, health). */
  get conntrack(): { state: string; pid: number | undefined; stats: Readonly<ConntrackStats> } | undefined {
    const s = this.#conntrack?.source;
    return s && { state: s.state, pid: s.pid, stats: s.stats };
  }

  /** Final: closes the admin listener and streams, stops conntrack, flushes and closes the outputs. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.live.close();
    await this.#applyAdmin(undefined);
    await this.#applyConntrack(undefined);
    this.#applyAccessLog('off');
    await this.#applyFlowLog(undefined);
    this.#applyMetrics(undefined);
    await this.#flushing;
  }

  /** Closing outputs that were swapped out; `stop` waits for them. */
  #flushing: Promise<unknown> = Promise.resolve();
  #closeLater(close: () => Promise<void>): void {
    let timer: { cancel(): void } | undefined;
    const deadline = new Promise<void>((resolve) => (timer = this.#deps.clock.setTimeout(resolve, FLUSH_DEADLINE_MS)));
    const done = Promise.race([close().catch(() => {}), deadline]).finally(() => timer?.cancel());
    this.#flushing = Promise.all([this.#flushing, done]);
  }

  #applyMetrics(config: SluiceConfig | undefined): void {
    const want = config?.admin !== undefined;
    if (!want) {
      if (this.#metrics) {
        this.#metrics.unsubscribe();
        this.#metrics = undefined;
      }
      return;
    }
    if (!this.#metrics) {
      const registry = new Registry();
      const routes = () => this.#routes();
      const metrics = createMetrics(registry, {
        // The agent's UDP sessions toward its local services are counted live too (route `<agent>/<service>`).
        liveCounters: () => [...routes().flatMap((r) => r.sessions()), ...(this.#agent()?.local.udpSessions() ?? [])],
        activeSessions: () => [...routes().map((r) => ({ route: r.name, proto: r.config.listen.transport, active: r.active })), ...(this.#agent()?.local.activeCounts() ?? [])],
        datapath: this.#deps.datapath,
        streamDatapath: this.#deps.streamDatapath,
        peerPaths: config!.agent !== undefined,
      });
      // Peer families only where an agent runs (`agent:` needs a restart to come or go).
      const peerMetrics = config!.agent ? registerPeerMetrics(registry, () => this.#agent(), this.#peerFlow) : undefined;
      registerAdminAuthMetrics(registry, this.#throttle.counters);
      const unsubscribe = [this.#deps.events.subscribe(metrics.sink), ...(peerMetrics ? [this.#deps.events.subscribe(peerMetrics.sink)] : [])];
      this.#metrics = { registry, metrics, unsubscribe: () => unsubscribe.forEach((u) => u()), unwatch: {}, process: undefined };
      this.#watchDrops();
    }
    const m = this.#metrics;
    if (config!.metrics.process && !m.process) {
      m.process = new Registry();
      collectDefaultMetrics({ register: m.process });
    } else if (!config!.metrics.process && m.process) {
      m.process.clear();
      m.process = undefined;
    }
  }

  /** (Re)points sluice_records_dropped_total at the current outputs. */
  #watchDrops(): void {
    const m = this.#metrics;
    if (!m) return;
    m.unwatch.access?.();
    m.unwatch.flow?.();
    const access = this.#accessLog?.writer;
    const flow = this.#flowLog?.writer;
    m.unwatch = {
      access: access && m.metrics.watchRecordLog('access', () => access.dropped),
      flow: flow && m.metrics.watchRecordLog('flow', () => flow.dropped),
    };
  }

  async #exposition(): Promise<{ contentType: string; body: string } | undefined> {
    const m = this.#metrics;
    if (!m) return undefined;
    let body = await m.registry.metrics();
    if (m.process) body += await m.process.metrics();
    return { contentType: m.registry.contentType, body };
  }

  async #applyAdmin(config: AdminConfig | undefined, gateway?: SluiceConfig['gateway']): Promise<void> {
    let old = this.#admin;
    if (!config) {
      this.#admin = undefined;
      this.#adminViews?.();
      this.#adminViews = undefined;
      await old?.close();
      return;
    }
    // The same listener when host and port are unchanged, or the port now names the one port 0 picked.
    const sameAddress = old && old.config.listen.host === config.listen.host && (config.listen.port === old.config.listen.port || config.listen.port === old.address.port);
    const sameTls = old && JSON.stringify(old.config.tls) === JSON.stringify(config.tls);
    const tls = await loadAdminTls(config.tls, gateway);
    if (old && sameAddress && sameTls) {
      if (tls) old.setCertificate(tls);
      old.setToken(config.token);
      return;
    }
    const { clock, log, events } = this.#deps;
    if (tls?.generated) log.warn({ fingerprint: tls.fingerprint }, `admin: generated the gateway certificate; pin it with fingerprint: ${tls.fingerprint}`);
    if (old && sameAddress) {
      // Only TLS changed: the port must be free before it is bound again.
      this.#admin = undefined;
      await old.close();
      old = undefined;
      config = { ...config, listen: { ...config.listen, port: this.#adminPort ?? config.listen.port } };
    }
    const admin = await AdminServer.start(config, {
      clock,
      log,
      routes: () => this.#routes(),
      routeViews: () => this.routeViews(),
      peers: () => this.peers(),
      bans: () => this.#deps.bans?.(),
      crowdsecBans: () => this.#deps.crowdsecBans?.(),
      metrics: () => this.#exposition(),
      health: () => this.status(),
      recent: this.recent,
      sources: this.sources,
      live: this.live,
      throttle: this.#throttle,
    }, tls);
    this.#admin = admin;
    this.#adminPort = admin.address.port;
    if (!this.#adminViews) {
      const a = events.subscribe(this.recent.sink);
      const b = events.subscribe(this.live.sink);
      const c = events.subscribe(this.traffic.sink);
      const d = events.subscribe(this.sources.sink);
      this.#adminViews = () => {
        a();
        b();
        c();
        d();
      };
    }
    log.info(
      { address: formatHostPort(admin.address.address, admin.address.port), token: config.token !== undefined, tls: tls !== undefined, ...(tls ? { fingerprint: tls.fingerprint } : {}) },
      'admin listening',
    );
    await old?.close();
  }

  #applyAccessLog(output: string): void {
    if ((this.#accessLog?.output ?? 'off') === output) return;
    const old = this.#accessLog;
    this.#accessLog = undefined;
    if (old) {
      old.unsubscribe();
      this.#closeLater(() => old.writer.close());
    }
    if (output !== 'off') {
      // The file (appended, never rotated) through the batching writer; stdout/stderr through pino's.
      const onError = this.#failureLogger('accessLog.output', output, 'access log');
      const writer =
        output === 'stdout' || output === 'stderr'
          ? openRecordOutput(output, { maxBufferBytes: 16 * 1024 * 1024, onError })
          : new RotatingFileWriter(output, { maxBytes: Number.MAX_SAFE_INTEGER, maxFiles: 0, maxBufferBytes: 16 * 1024 * 1024, lingerMs: FILE_LINGER_MS, clock: this.#deps.clock, onError });
      this.#accessLog = { output, writer, unsubscribe: this.#deps.events.subscribe(accessLogSink(writer, this.#deps.clock, { peerFlow: this.#peerFlow, instanceId: this.instanceId })) };
    }
    this.#watchDrops();
  }

  async #applyFlowLog(config: SluiceConfig | undefined): Promise<void> {
    const f = config?.flowLog;
    const key = f && f.output !== 'off' ? JSON.stringify(f) : 'off';
    if ((this.#flowLog?.key ?? 'off') === key) return;
    const old = this.#flowLog;
    this.#flowLog = undefined;
    if (old) {
      old.unsubscribe();
      old.recorder.stop();
      this.#closeLater(() => old.writer.close());
    }
    if (f && key !== 'off') {
      const { clock, events } = this.#deps;
      const routes = () => this.#routes();
      const writer = openRecordOutput(f.output, {
        maxBytes: f.maxBytes,
        maxFiles: f.maxFiles,
        lingerMs: FILE_LINGER_MS,
        clock,
        onError: this.#failureLogger('flowLog.output', f.output, 'flow log'),
      });
      const recorder = createFlowRecords(writer, {
        clock,
        instanceId: this.instanceId,
        updateIntervalMs: f.updateIntervalMs,
        liveFlows: () => routes().flatMap((r) => r.sessions()),
        peerFlow: this.#peerFlow,
      });
      this.#flowLog = { key, output: f.output, writer, recorder, unsubscribe: events.subscribe(recorder.sink) };
    }
    this.#watchDrops();
  }

  /**
   * One error line when an output starts failing (the writers call it once per failure spell);
   * meanwhile records are dropped and counted, and /api/health says `degraded`.
   */
  #failureLogger(key: string, output: string, what: string): (err: unknown) => void {
    return (err) => this.#deps.log.error({ key, output, err: err instanceof Error ? err.message : String(err) }, `${what} output failing; records are dropped until it works again`);
  }

  /** Outputs that cannot write right now, for /api/health. */
  #problems(): string[] {
    const problems: string[] = [];
    for (const [key, part] of [
      ['accessLog.output', this.#accessLog],
      ['flowLog.output', this.#flowLog],
    ] as const) {
      const failure = part?.writer.failure;
      if (part && failure !== undefined) problems.push(`${key} ${part.output}: ${failure} (records are dropped)`);
    }
    return problems;
  }

  async #applyConntrack(config: SluiceConfig | undefined): Promise<void> {
    const c = config?.conntrack;
    const key = c?.enabled ? JSON.stringify(c) : 'off';
    if ((this.#conntrack?.key ?? 'off') === key) return;
    const old = this.#conntrack;
    this.#conntrack = undefined;
    await old?.source.close();
    if (!c || key === 'off') return;
    const { clock, log } = this.#deps;
    const source = conntrackSourceFrom(c, {
      clock,
      log,
      instanceId: this.instanceId,
      // Through whatever flow log is current, so a flowLog change does not restart the tool.
      recorder: { write: (r) => this.#flowLog?.recorder.write(r) },
      ...this.#deps.conntrack,
    });
    this.#conntrack = { key, source };
    await source.start();
  }
}
