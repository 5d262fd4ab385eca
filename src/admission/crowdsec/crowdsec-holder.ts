import type { Registry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import type { RouteConfig } from '../../config/types.js';
import type { Admitter } from '../admitter.js';
import { CrowdsecBouncer, CrowdsecCounters, type BouncerStatus } from './crowdsec-bouncer.js';
import { registerCrowdsecMetrics, unregisterCrowdsecMetrics } from './crowdsec-metrics.js';
import type { CrowdsecSettings } from '../../config/crowdsec-settings.js';

export interface CrowdsecHolderDeps {
  readonly clock: Clock;
  /** State changes of the bouncer in use, for the ops log. Must not throw. */
  readonly onStatus?: (s: BouncerStatus, settings: CrowdsecSettings) => void;
  /** The bouncer in use may now refuse clients it admitted (new bans, a state that denies); see BouncerDeps. */
  readonly onVerdictsChanged?: () => void;
}

/**
 * The bouncer of the `crowdsec:` section, across reloads. `apply` starts, replaces or stops it;
 * route admitters read the current one at each check, so they never hold a stopped bouncer.
 */
export class CrowdsecHolder {
  readonly counters = new CrowdsecCounters();
  readonly #deps: CrowdsecHolderDeps;
  readonly #registries = new WeakSet<Registry>();
  #current: CrowdsecBouncer | undefined;

  constructor(deps: CrowdsecHolderDeps) {
    this.#deps = deps;
  }

  get current(): CrowdsecBouncer | undefined {
    return this.#current;
  }

  /**
   * Makes `settings` current. Same LAPI, key, interval and timeout: the running bouncer keeps its
   * list and only takes the new mode and onUnavailable. Otherwise a new bouncer is started and
   * its first pull awaited (at most `timeout`) before it replaces the old one, so a reload does not
   * open a window without decisions. `undefined` stops the bouncer.
   */
  async apply(settings: CrowdsecSettings | undefined): Promise<void> {
    const old = this.#current;
    if (!settings) {
      this.#current = undefined;
      old?.close();
      return;
    }
    if (old && sameSource(old.settings, settings)) {
      old.setPolicy(settings.mode, settings.onUnavailable);
      return;
    }
    const next = new CrowdsecBouncer(settings, {
      clock: this.#deps.clock,
      counters: this.counters,
      onStatus: (s) => this.#deps.onStatus?.(s, settings),
      // Only the bouncer in use speaks for the verdicts; a replacement's first pull is covered by the reload that installs it.
      onVerdictsChanged: () => {
        if (this.#current === next) this.#deps.onVerdictsChanged?.();
      },
    });
    await next.firstPull;
    this.#current = next;
    old?.close();
  }

  /**
   * The admission step for `route`: undefined unless its acl says `crowdsec: true`. Observe-only
   * when `crowdsec.mode` is observe or the route's `acl.observeOnly` is true.
   */
  admitter(route: Pick<RouteConfig, 'acl'>): Admitter | undefined {
    if (!route.acl?.crowdsec) return undefined;
    const observeOnly = route.acl.observeOnly === true;
    return (client) => {
      const v = this.#current?.check(client.address);
      return v && observeOnly && !v.observeOnly ? { ...v, observeOnly } : v;
    };
  }

  /**
   * Adds the crowdsec metrics to `registry` while a `crowdsec:` section runs, and takes them out
   * when it does not (a reload removed it): a family of a feature that is off would read as "down"
   * and fire alerts. Call after `apply` and whenever the metrics registry may have changed.
   */
  exposeMetrics(registry: Registry | undefined): void {
    if (!registry) return;
    const on = this.#current !== undefined;
    if (on && !this.#registries.has(registry)) {
      this.#registries.add(registry);
      registerCrowdsecMetrics(registry, () => ({ counters: this.counters, bouncer: this.#current }));
    } else if (!on && this.#registries.has(registry)) {
      this.#registries.delete(registry);
      unregisterCrowdsecMetrics(registry);
    }
  }

  /** Stops pulling. Idempotent. */
  close(): void {
    this.#current?.close();
    this.#current = undefined;
  }
}

function sameSource(a: CrowdsecSettings, b: CrowdsecSettings): boolean {
  return (
    a.url === b.url && a.apiKey === b.apiKey && a.intervalMs === b.intervalMs && a.timeoutMs === b.timeoutMs &&
    JSON.stringify(a.banPrefix) === JSON.stringify(b.banPrefix)
  );
}
