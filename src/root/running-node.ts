import { watch } from 'node:fs';
import type { Fleet } from '../fleet/fleet.js';
import type { Logger } from 'pino';
import { SluiceError } from '../core/errors.js';
import { formatIssue, type SluiceConfig } from '../config/types.js';
import { loadConfigFile } from '../config/load.js';
import { preflightFile } from '../config/preflight.js';
import { openCountryDatabase } from '../admission/acl/country.js';
import type { EventStream } from '../observe/events.js';
import type { GeoHolder } from '../admission/geo-holder.js';
import type { CrowdsecHolder } from '../admission/crowdsec/crowdsec-holder.js';
import type { Bans } from '../admission/bans/bans.js';
import type { ContainerRoutes, ReloadSummary } from '../discovery/container-routes.js';
import type { Ops } from '../ops/ops.js';
import { checkOutputs } from '../ops/output-check.js';
import type { Exposure } from './exposure.js';
import type { PartStack } from './part-stack.js';
import type { RouteSet } from './route-set.js';
import type { SerialQueue } from './serial-queue.js';
import type { NodeDeps } from './node-deps.js';

/** How long the file watch waits for more changes before it reloads (editors write in steps). */
const WATCH_SETTLE_MS = 200;

/** Everything startNode built, in the order it was built. */
export interface BuiltParts {
  readonly config: SluiceConfig;
  readonly deps: NodeDeps;
  readonly log: Logger;
  readonly events: EventStream;
  readonly stack: PartStack;
  readonly queue: SerialQueue;
  readonly geo: GeoHolder;
  readonly ops: Ops;
  readonly crowdsec: CrowdsecHolder;
  readonly bans: Bans;
  readonly routes: RouteSet;
  readonly exposure: Exposure;
  readonly containers: ContainerRoutes | undefined;
  readonly fleet?: Fleet;
}

/**
 * A running Sluice, as startNode returns it: its parts (read-only), reload from the config file,
 * and the two ways to stop. main.ts owns the process (signals, exit codes); this owns the rest.
 */
export class RunningNode {
  readonly log: Logger;
  readonly events: EventStream;
  /** The config's routes (and the label routes), swapped on reload. */
  readonly routes: RouteSet;
  /** The record sinks and the admin listener. */
  readonly ops: Ops;
  /** The gateway and agent of `gateway:` / `agent:` (docs/expose.md); a reload does not change them. */
  readonly exposure: Exposure;
  /** The CrowdSec bouncer of `crowdsec:` (docs/crowdsec.md), restarted by a reload that changes its LAPI. */
  readonly crowdsec: CrowdsecHolder;
  /** The ban list and ban rules (`bans:`, docs/bans.md); API bans work without the section (in memory only). */
  readonly bans: Bans;
  /** Routes from container labels (`docker:`, docs/containers.md); adding or removing `docker:` needs a restart. */
  readonly containers: ContainerRoutes | undefined;
  /** The gateway's fleet (`gateway.fleet`, docs/fleet.md); a reload does not change it. */
  readonly fleet: Fleet | undefined;
  readonly #parts: BuiltParts;

  private constructor(parts: BuiltParts) {
    this.#parts = parts;
    ({ log: this.log, events: this.events, routes: this.routes, ops: this.ops, exposure: this.exposure, crowdsec: this.crowdsec, bans: this.bans, containers: this.containers } = parts);
    this.fleet = parts.fleet;
  }

  /** Wraps the started parts and, with `lifecycle.watch`, starts the config file watch (pushed on the stack). */
  static started(parts: BuiltParts): RunningNode {
    const node = new RunningNode(parts);
    const path = parts.deps.configPath;
    if (parts.config.lifecycle.watch && path) node.#watch(path);
    return node;
  }

  /**
   * Re-reads the config file and applies the difference. An invalid config (or a bind failure
   * of a new listener) is rejected with its problems and the running config stays. Serialised:
   * a reload requested during another one (or a container change) runs after it.
   */
  reload(): Promise<ReloadSummary | undefined> {
    return this.#parts.queue.run(() => this.#reloadOnce());
  }

  /** Graceful stop: no new sessions, live ones drain until `lifecycle.drainTimeoutMs`; every part closes, newest first. */
  stop(): Promise<void> {
    return this.#parts.stack.stop('graceful');
  }

  /** Immediate stop: every session ends now, also those of a graceful stop already draining. */
  destroy(): Promise<void> {
    return this.#parts.stack.stop('immediate');
  }

  /** `await using node = await startNode(...)`: a graceful stop at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #reloadOnce(): Promise<ReloadSummary | undefined> {
    const { deps, events, routes, geo, crowdsec, bans, containers, log, ops, exposure } = this.#parts;
    const path = deps.configPath;
    if (!path) return undefined;
    const parsed = await loadConfigFile(path);
    const issues = parsed.ok ? await preflightFile(parsed.config, path, { openCountryDatabase }, routes.config) : parsed.issues;
    if (!parsed.ok || issues.length > 0) {
      events.emit({ type: 'config-rejected', at: deps.clock.wallNow(), problems: issues.map(formatIssue) });
      return undefined;
    }
    const next = parsed.config;
    try {
      await checkOutputs(next, routes.config);
      await geo.load(next.geoip?.database);
      await crowdsec.apply(next.crowdsec);
      await bans.apply(next.bans);
      const summary = containers ? await containers.reloadFile(next) : await routes.reload(next);
      log.level = next.log.level;
      await ops.apply(next);
      crowdsec.exposeMetrics(ops.registry);
      bans.exposeMetrics(ops.registry);
      exposure.exposeMetrics(ops.registry);
      await exposure.reload(next);
      return summary;
    } catch (err) {
      const message = err instanceof SluiceError ? err.message : String(err);
      events.emit({ type: 'config-rejected', at: deps.clock.wallNow(), problems: [message] });
      return undefined;
    }
  }

  #watch(path: string): void {
    const { deps, log, stack } = this.#parts;
    let pending: { cancel(): void } | undefined;
    try {
      const watcher = watch(path, () => {
        pending?.cancel();
        pending = deps.clock.setTimeout(() => void this.reload(), WATCH_SETTLE_MS);
      });
      watcher.unref();
      stack.defer('config watch', () => {
        pending?.cancel();
        watcher.close();
      });
    } catch (err) {
      log.warn({ path, err: (err as Error).message }, 'cannot watch the config file; reload with SIGHUP');
    }
  }
}
