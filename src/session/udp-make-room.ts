import type { AdmissionLimits } from '../admission/limits.js';
import type { EndReason, RejectReason } from '../observe/events.js';
import type { CompletedExchanges } from './completed-exchanges.js';
import type { UdpSessionPolicy } from './session-policy.js';
import type { UdpSession } from './udp-session.js';

/** How long a finished request/response exchange stays untouchable before a full table may end it. */
const EXCHANGE_QUIET_MS = 1000;

/** What making room needs from the session table. */
export interface RoomTable {
  sessions(): Iterable<UdpSession>;
  end(s: UdpSession, reason: EndReason): void;
}

/**
 * Admission's limit step for UDP: at the per-source or the route cap, a finished
 * request/response exchange that has been quiet for EXCHANGE_QUIET_MS (of this source, or of
 * any source at the route cap) is ended (`evicted`) to make room, at most once per cap, instead
 * of refusing the new client; with `onLimit: evict-lru`, the route cap ends the oldest session.
 * `tick` and `sweepMs` are the table's sweep tick and period.
 */
export function makeRoom(source: string, limits: AdmissionLimits, exchanges: CompletedExchanges, policy: UdpSessionPolicy, tick: number, sweepMs: number, table: RoomTable): RejectReason | undefined {
  const evict = policy.udp.onLimit === 'evict-lru';
  let limited = limits.admit(source, evict);
  const quietSince = tick - Math.ceil(Math.min(EXCHANGE_QUIET_MS, policy.idleTimeoutMs) / sweepMs);
  for (let tries = 0; tries < 2 && (limited === 'limit-source-sessions' || limited === 'limit-route-sessions'); tries++) {
    const old = exchanges.take(limited === 'limit-source-sessions' ? source : undefined, quietSince);
    if (old === undefined) break;
    table.end(old, 'evicted');
    limited = limits.admit(source, evict);
  }
  if (limited === undefined && evict && limits.atRouteCap) {
    let oldest: UdpSession | undefined;
    for (const s of table.sessions()) if (oldest === undefined || s.lastTick < oldest.lastTick) oldest = s;
    if (oldest) table.end(oldest, 'evicted');
  }
  return limited;
}
