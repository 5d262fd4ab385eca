import { watch, type FSWatcher } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { Clock } from './core/clock.js';
import { SluiceError } from './core/errors.js';
import { formatIssue, type SluiceConfig } from './config/types.js';
import { loadConfigFile } from './config/load.js';
import { EventStream } from './observe/events.js';
import { Recording } from './observe/recording.js';
import { opsLogSink } from './observe/ops-log.js';
import { SluiceNode, type ReloadSummary } from './node.js';
import { DirectStreamDialer } from './upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from './upstream/direct/udp-dialer.js';
import { selectUdpDatapath } from './datapath/native/select.js';
import { selectStreamDatapath } from './datapath/native/select-stream.js';
import type { NativeDatapathOptions } from './datapath/native/native-datapath.js';
import { GeoHolder } from './admission/geo-holder.js';
import { checkOutputs } from './observe/output-check.js';
import { preflightFile } from './config/preflight.js';
import { startExposure, type Exposure } from './gateway/exposure.js';
import { CrowdsecHolder } from './admission/crowdsec/crowdsec-holder.js';
import { VerdictChanges } from './admission/reverdict.js';
import { crowdsecStatusLogger } from './admission/crowdsec/status-log.js';
import { ContainerRoutes } from './discovery/container-routes.js';
import { Bans } from './admission/bans/bans.js';
import { banView } from './admin/bans-api.js';

export interface AppDeps {
  readonly clock: Clock;
  /** Where operational logs go (JSON lines). */
  readonly logDestination: NodeJS.WritableStream;
  /** Knobs of the native UDP datapath (UDP_SEGMENT, readiness); defaults suit production. */
  readonly udpNative?: NativeDatapathOptions;
}

/**
 * A running Sluice with its sinks: the node, the access log, the ops log, and reload from the
 * config file. main.ts owns the process (signals, exit codes); this owns everything else.
 */
export class App {
  readonly events: EventStream;
  #watcher: FSWatcher | undefined;
  #reloading: Promise<unknown> = Promise.resolve();
  /** The gateway and agent of `gateway:` / `agent:` (docs/expose.md); a reload does not change them. */
  exposure: Exposure | undefined;
  /** The CrowdSec bouncer of `crowdsec:` (docs/crowdsec.md), restarted by a reload that changes its LAPI. */
  crowdsec: CrowdsecHolder | undefined;
  /** Routes from container labels (`docker:`, docs/containers.md); adding or removing `docker:` needs a restart. */
  containers: ContainerRoutes | undefined;
  /** The ban list and ban rules (`bans:`, docs/bans.md); API bans work without the section (in memory only). */
  bans: Bans | undefined;

  private constructor(
    readonly node: SluiceNode,
    readonly log: Logger,
    events: EventStream,
    private readonly configPath: string | undefined,
    private readonly deps: AppDeps,
    private readonly geo: GeoHolder,
    /** Access log, flow records, metrics, conntrack and the admin listener (observe/recording.ts). */
    readonly recording: Recording,
  ) {
    this.events = events;
  }

  /** Starts from a validated config. Throws SluiceError (SLUICE_ERR_BIND) when a route cannot bind. */
  static async start(config: SluiceConfig, configPath: string | undefined, deps: AppDeps): Promise<App> {
    // ISO 8601 `time`, as in the access log and flow records (pino's default is epoch ms).
    const log = pino({ level: config.log.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, deps.logDestination as never);
    const events = new EventStream((err) => log.error({ err }, 'an event sink failed and was detached'));
    events.subscribe(opsLogSink(log, deps.clock));
    await checkOutputs(config);
    const geo = new GeoHolder();
    await geo.load(config.geoip?.database);
    // Chosen once per process; `datapath: native` where the addon cannot load stops the start here.
    const udp = selectUdpDatapath(config.datapath ?? 'auto', deps.udpNative);
    if (udp.fallback !== undefined) log.warn({ reason: udp.fallback }, 'native UDP datapath unavailable; using the js datapath');
    const stream = selectStreamDatapath(config.datapath ?? 'auto');
    if (stream.fallback !== undefined) log.warn({ reason: stream.fallback }, 'native TCP stream datapath unavailable; using the js datapath');
    // Sinks first, so they see the routes come up; they read the routes through `node` once it exists.
    let node: SluiceNode | undefined;
    let self: App | undefined;
    const recording = await Recording.start(config, {
      clock: deps.clock,
      events,
      log,
      routes: () => node?.routes() ?? [],
      datapath: () => node?.udpDatapathKind ?? 'js',
      streamDatapath: () => node?.streamDatapathKind ?? 'js',
      containers: () => self?.containers?.status(),
      exposure: () => self?.exposure,
      bans: () => self?.bans,
      crowdsecBans: () => self?.crowdsec?.current,
      // The ban list's own ban first (it holds on every route); else CrowdSec's decision on the source.
      banState: (source) => {
        const b = self?.bans?.store.banOf(source);
        return b ? banView(b) : self?.crowdsec?.current?.banOf(source);
      },
    });
    // Live sessions of the node's routes and of the exposure's listeners are judged again on every change.
    const verdicts = new VerdictChanges(events, deps.clock);
    const crowdsec = new CrowdsecHolder({ clock: deps.clock, onStatus: crowdsecStatusLogger(log), onVerdictsChanged: () => verdicts.changed('crowdsec') });
    const bans = await Bans.start(config.bans, {
      clock: deps.clock,
      events,
      warn: (fields, message) => log.warn(fields, message),
      onBanned: () => verdicts.changed('bans'),
      rulesOf: (route) => node?.route(route)?.config.bans,
      agentEndpointRules: () => self?.exposure?.gateway?.config.bans,
      // Every open session, of the node's routes and the exposed services' public listeners.
      liveFlows: () => [...(node?.routes() ?? []), ...(self?.exposure?.routes() ?? [])].flatMap((r) => r.sessions()),
    });
    bans.exposeMetrics(recording.registry);
    try {
      await crowdsec.apply(config.crowdsec);
      crowdsec.exposeMetrics(recording.registry);
      node = await SluiceNode.start(config, {
        clock: deps.clock,
        events,
        streamDialer: new DirectStreamDialer(),
        datagramDialer: new DirectDatagramDialer(undefined, udp.datapath),
        udpDatapath: udp.datapath,
        streamDatapath: stream.datapath,
        geo: () => geo.current,
        crowdsec: (r) => crowdsec.admitter(r),
        admit: bans.admitter,
        verdicts,
      });
    } catch (err) {
      crowdsec.close();
      await bans.close();
      await recording.stop();
      throw err;
    }
    let exposure: Exposure;
    try {
      exposure = await startExposure(config, {
        clock: deps.clock,
        events,
        log,
        routeDeps: (r) => node.routeDeps(r),
        nextFlowId: () => node.nextFlowId(),
        datagramDialer: new DirectDatagramDialer(undefined, udp.datapath),
        datapath: udp.datapath,
        banned: (client) => bans.store.check(client.address, client.family),
      });
    } catch (err) {
      await node.destroy();
      crowdsec.close();
      await bans.close();
      await recording.stop();
      throw err;
    }
    verdicts.watch(() => exposure.routes());
    const app = new App(node, log, events, configPath, deps, geo, recording);
    self = app;
    app.exposure = exposure;
    exposure.exposeMetrics(recording.registry);
    app.crowdsec = crowdsec;
    app.bans = bans;
    if (config.docker) {
      app.containers = ContainerRoutes.start({ ...config, docker: config.docker }, { clock: deps.clock, log, node, serialize: (fn) => app.#serial(fn) });
    }
    if (config.lifecycle.watch && configPath) app.#watch(configPath);
    return app;
  }

  /**
   * Re-reads the config file and applies the difference. An invalid config (or a bind failure
   * of a new listener) is rejected with its problems and the running config stays. Serialised:
   * a reload requested during another one runs after it.
   */
  reload(): Promise<ReloadSummary | undefined> {
    return this.#serial(() => this.#reloadOnce());
  }

  /** Runs `fn` after every reload already queued: file reloads and container changes never overlap. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#reloading.then(fn);
    this.#reloading = next.catch(() => {});
    return next;
  }

  async #reloadOnce(): Promise<ReloadSummary | undefined> {
    if (!this.configPath) return undefined;
    const parsed = await loadConfigFile(this.configPath);
    const issues = parsed.ok ? await preflightFile(parsed.config, this.configPath, this.node.config) : parsed.issues;
    if (!parsed.ok || issues.length > 0) {
      this.events.emit({ type: 'config-rejected', at: this.deps.clock.wallNow(), problems: issues.map(formatIssue) });
      return undefined;
    }
    try {
      await checkOutputs(parsed.config, this.node.config);
      await this.geo.load(parsed.config.geoip?.database);
      await this.crowdsec?.apply(parsed.config.crowdsec);
      await this.bans?.apply(parsed.config.bans);
      const summary = this.containers ? await this.containers.reloadFile(parsed.config) : await this.node.reload(parsed.config);
      this.log.level = parsed.config.log.level;
      await this.recording.apply(parsed.config);
      this.crowdsec?.exposeMetrics(this.recording.registry);
      this.bans?.exposeMetrics(this.recording.registry);
      this.exposure?.exposeMetrics(this.recording.registry);
      await this.exposure?.reload(parsed.config);
      return summary;
    } catch (err) {
      const message = err instanceof SluiceError ? err.message : String(err);
      this.events.emit({ type: 'config-rejected', at: this.deps.clock.wallNow(), problems: [message] });
      return undefined;
    }
  }

  /** Graceful stop with the configured drain deadline. */
  async stop(): Promise<void> {
    this.#watcher?.close();
    await this.exposure?.close();
    await this.containers?.close();
    await this.node.shutdown();
    this.crowdsec?.close();
    await this.bans?.close();
    await this.recording.stop();
  }

  #watch(path: string): void {
    let pending: { cancel(): void } | undefined;
    try {
      this.#watcher = watch(path, () => {
        pending?.cancel();
        pending = this.deps.clock.setTimeout(() => void this.reload(), 200);
      });
      this.#watcher.unref();
    } catch (err) {
      this.log.warn({ path, err: (err as Error).message }, 'cannot watch the config file; reload with SIGHUP');
    }
  }
}
