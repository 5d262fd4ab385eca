import { Counter, Gauge, type Registry } from 'prom-client';
import type { PoolView } from '../upstream/pool/pool.js';

/** A pooled route's view, as the metrics read it at scrape time. */
export interface PoolReading {
  readonly route: string;
  readonly view: PoolView;
}

const STATES = ['unknown', 'up', 'down', 'ejected', 'draining'] as const;

/**
 * Pool families (docs/metrics.md, "Pools"), read from the pools at scrape time: nothing on the
 * data path. The `member` label is a member's label from the config (its address, or name/address
 * for a resolved name), so its values are bounded by the config (at most 64 members per route,
 * 16 addresses per name).
 */
export function registerPoolMetrics(registry: Registry, read: () => readonly PoolReading[]): void {
  const registers = [registry];
  const each = (fn: (route: string, m: PoolView['members'][number]) => void) => {
    for (const p of read()) for (const m of p.view.members) fn(p.route, m);
  };
  new Gauge({
    name: 'sluice_pool_member_state',
    help: 'Health state of each pool member: 1 for its current state (unknown, up, down, ejected, draining), 0 for the others',
    labelNames: ['route', 'member', 'state'] as const,
    registers,
    collect() {
      this.reset();
      each((route, m) => {
        for (const state of STATES) this.set({ route, member: m.label, state }, m.health === state ? 1 : 0);
      });
    },
  });
  new Gauge({
    name: 'sluice_pool_member_active',
    help: 'Live sessions (UDP) or connections (TCP) on each pool member',
    labelNames: ['route', 'member'] as const,
    registers,
    collect() {
      this.reset();
      each((route, m) => this.set({ route, member: m.label }, m.active));
    },
  });
  new Counter({
    name: 'sluice_pool_member_sessions_total',
    help: 'Sessions or connections started on each pool member (a moved UDP session counts on each member it used)',
    labelNames: ['route', 'member'] as const,
    registers,
    collect() {
      this.reset();
      each((route, m) => this.inc({ route, member: m.label }, m.sessions));
    },
  });
  new Counter({
    name: 'sluice_pool_member_bytes_total',
    help: 'Bytes through each pool member: direction from_client (client to member) or to_client',
    labelNames: ['route', 'member', 'direction'] as const,
    registers,
    collect() {
      this.reset();
      each((route, m) => {
        this.inc({ route, member: m.label, direction: 'from_client' }, m.bytesFromClient);
        this.inc({ route, member: m.label, direction: 'to_client' }, m.bytesToClient);
      });
    },
  });
  new Counter({
    name: 'sluice_pool_member_checks_total',
    help: 'Active health checks run against each pool member',
    labelNames: ['route', 'member'] as const,
    registers,
    collect() {
      this.reset();
      each((route, m) => this.inc({ route, member: m.label }, m.checks));
    },
  });
  new Gauge({
    name: 'sluice_pool_member_check_seconds',
    help: 'How long the last active check of each pool member took',
    labelNames: ['route', 'member'] as const,
    registers,
    collect() {
      this.reset();
      each((route, m) => {
        if (m.lastCheck) this.set({ route, member: m.label }, m.lastCheck.latencyMs / 1000);
      });
    },
  });
  new Counter({
    name: 'sluice_pool_refused_total',
    help: 'New sessions or connections a pooled route refused because no member took sessions (no-healthy-upstream)',
    labelNames: ['route'] as const,
    registers,
    collect() {
      this.reset();
      for (const p of read()) this.inc({ route: p.route }, p.view.refused);
    },
  });
}
