import { Counter, type Registry } from 'prom-client';
import type { ThrottleCounters } from './login-throttle.js';

/** The admin listener's guessing counters (docs/metrics.md), read at scrape time. */
export function registerAdminAuthMetrics(registry: Registry, counters: ThrottleCounters): void {
  new Counter({
    name: 'sluice_admin_auth_failures_total',
    help: 'Wrong admin tokens and cookies (Bearer, login form, cookie).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.failures);
    },
  });
  new Counter({
    name: 'sluice_admin_auth_throttled_total',
    help: 'Admin requests carrying a credential refused with 429 before comparison, because their source must wait after wrong ones.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.throttled);
    },
  });
}
