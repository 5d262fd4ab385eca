import type { Clock } from '../core/clock.js';
import { watchSilent } from './silent-watch.js';
import type { StreamConn } from './stream-datapath.js';

/**
 * TCP keepalive of an idle pooled data connection (docs/expose.md, "Data connections for TCP
 * streams"): a probe after 30 s of quiet, then every 10 s, 3 unanswered end it. 30 s refreshes the
 * NAT mappings on the way well inside the shortest established-TCP idle timeouts met in practice
 * (cloud NATs and load balancers from 240 s); a dead connection is found within 60 s.
 */
export const POOLED_KEEPALIVE = { idleS: 30, intervalS: 10, count: 3 } as const;

/**
 * The agent closes and replaces an idle data connection after this long (times 0.75-1, so a pool
 * made at once is not remade at once): below 240 s, so even a middlebox that does not count
 * keepalive probes as activity never holds one idle long enough to drop its mapping.
 */
export const POOLED_MAX_IDLE_MS = 120_000;

/**
 * Guards one idle pooled connection: keepalive on, `gone` called once when it turns readable
 * (nothing may arrive while it waits: a FIN, a reset or stray bytes mean it is dead) or, with
 * `maxIdleMs`, when it has waited that long. The returned release ends the guard (the connection
 * was taken, or the pool closes); `gone` is not called after it.
 */
export function guardPooledConn(conn: StreamConn, clock: Clock, gone: () => void, maxIdleMs = 0): () => void {
  conn.keepAlive?.(POOLED_KEEPALIVE.idleS, POOLED_KEEPALIVE.intervalS, POOLED_KEEPALIVE.count);
  let on = true;
  const fire = () => {
    if (!on) return;
    release();
    gone();
  };
  const unwatch = watchSilent(conn, fire);
  const timer = maxIdleMs > 0 ? clock.setTimeout(fire, maxIdleMs * (0.75 + 0.25 * Math.random())) : undefined;
  const release = () => {
    on = false;
    unwatch();
    timer?.cancel();
  };
  return release;
}
