import type { Clock } from '../core/clock.js';
import { computeGroupProof, type ControlMessage, type PublishPool } from '../protocol/tunnel/index.js';
import { LocalHealthCheck } from './local-health.js';
import type { ExposedService } from './local-services.js';

/**
 * The agent's side of agent pools (docs/pools.md, "Agent pools"): the pool trailer of a member's
 * PUBLISH, and its local health checks, reported as SERVICE_HEALTH while the service is published.
 */

/** The PUBLISH pool trailer of `svc` on the connection with TLS binding `binding`; undefined for a service of its own. */
export function poolTrailer(svc: ExposedService, agentName: string, binding: Buffer): PublishPool | undefined {
  const p = svc.config.pool;
  if (!p) return undefined;
  return { group: p.group, proof: computeGroupProof({ key: p.groupKey, binding, agentName, group: p.group }), healthReported: p.health !== undefined };
}

/**
 * Starts the local checks of every pool member with `health`. `send` sends on the current
 * connection (false when there is none); a report goes out on each change while the service is
 * published, and again after each PUBLISH_OK (`published`). Returns the closer.
 */
export function startLocalChecks(services: readonly ExposedService[], clock: Clock, send: (m: ControlMessage) => boolean): { published(svc: ExposedService): void; close(): void } {
  const checks = new Map<ExposedService, LocalHealthCheck>();
  const tell = (svc: ExposedService) => {
    const r = checks.get(svc)?.report;
    if (r && svc.bound) send({ type: 'service-health', serviceId: svc.id, up: r.up, message: r.message });
  };
  for (const svc of services) {
    const h = svc.config.pool?.health;
    if (!h) continue;
    const check = new LocalHealthCheck(h, svc.config.local, clock, () => tell(svc));
    checks.set(svc, check);
    svc.localHealth = check;
  }
  return {
    published: tell,
    close: () => checks.forEach((c) => c.close()),
  };
}
