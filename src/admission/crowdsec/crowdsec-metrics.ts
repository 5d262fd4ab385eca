import { Counter, Gauge, type Registry } from 'prom-client';
import type { CrowdsecBouncer, CrowdsecCounters } from './crowdsec-bouncer.js';
import { PULL_FAILURES } from './lapi-stream.js';

const NAMES = [
  'sluice_crowdsec_pulls_total',
  'sluice_crowdsec_decisions_ignored_total',
  'sluice_crowdsec_banned',
  'sluice_crowdsec_up',
  'sluice_crowdsec_last_success_timestamp_seconds',
] as const;

/** Takes the families of `registerCrowdsecMetrics` out of `registry` (the section was removed). */
export function unregisterCrowdsecMetrics(registry: Registry): void {
  for (const name of NAMES) registry.removeSingleMetric(name);
}

/**
 * Registers the bouncer's metrics in `registry`, read at scrape time from `read()` (so a bouncer
 * replaced by a reload is picked up). Names: docs/crowdsec.md. Refusals themselves are counted
 * by the event-stream metrics under reason `crowdsec`.
 */
export function registerCrowdsecMetrics(registry: Registry, read: () => { counters: CrowdsecCounters; bouncer: CrowdsecBouncer | undefined }): void {
  const registers = [registry];
  new Counter({
    name: 'sluice_crowdsec_pulls_total',
    help: 'Pulls of the CrowdSec decision stream, by result (ok, or why it failed)',
    labelNames: ['result'],
    registers,
    collect() {
      const c = read().counters;
      this.reset();
      this.inc({ result: 'ok' }, c.pullsOk.full + c.pullsOk.delta);
      for (const k of PULL_FAILURES) this.inc({ result: k }, c.pullsFailed[k]);
    },
  });
  new Counter({
    name: 'sluice_crowdsec_decisions_ignored_total',
    help: 'Decisions received but not kept, by reason (scope, type, simulated, expired, invalid)',
    labelNames: ['reason'],
    registers,
    collect() {
      const c = read().counters;
      this.reset();
      for (const [reason, n] of Object.entries(c.ignored)) this.inc({ reason }, n);
    },
  });
  new Gauge({
    name: 'sluice_crowdsec_banned',
    help: 'Distinct banned addresses (scope ip) and networks (scope range) held in memory',
    labelNames: ['scope'],
    registers,
    collect() {
      const s = read().bouncer?.stats();
      this.set({ scope: 'ip' }, s?.ips ?? 0);
      this.set({ scope: 'range' }, s?.ranges ?? 0);
    },
  });
  new Gauge({
    name: 'sluice_crowdsec_up',
    help: '1 while the decision list is usable (state ready or degraded), else 0 (onUnavailable applies)',
    registers,
    collect() {
      const st = read().bouncer?.state;
      this.set(st === 'ready' || st === 'degraded' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sluice_crowdsec_last_success_timestamp_seconds',
    help: 'Wall-clock time of the last successful pull (0 before the first)',
    registers,
    collect() {
      this.set((read().bouncer?.stats().lastSuccessAt ?? 0) / 1000);
    },
  });
}
