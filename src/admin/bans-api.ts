import type { IncomingMessage } from 'node:http';
import { parseDurationMs } from '../core/duration.js';
import type { BanRequest } from '../admission/bans/ban-store.js';
import type { BanInfo } from '../observe/events.js';

/** What /api/bans needs of the ban list (admission/bans/bans.ts). */
export interface BanList {
  readonly store: { list(): BanInfo[] };
  readonly stateFile: string | undefined;
  add(req: BanRequest): BanInfo | string;
  remove(target: string): BanInfo | undefined;
}

/** An answer for the admin server to send. */
export interface ApiReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

/** Longest ban the API takes (a typo of `100y` should not ban forever). */
const MAX_API_BAN_MS = 366 * 24 * 3600_000;

/** A ban as the API shows it: times in ISO 8601. */
export function banView(b: BanInfo): Record<string, string> {
  return { target: b.target, source: b.source, reason: b.reason, createdAt: new Date(b.createdAt).toISOString(), expiresAt: new Date(b.expiresAt).toISOString() };
}

/**
 * `GET/POST/DELETE /api/bans` (docs/admin.md). GET lists; POST `{"address", "duration", "reason"}`
 * adds (source `api`); DELETE `?address=` removes. The caller has already checked the token;
 * writes are refused when no token is configured (`tokenSet` false), since anyone reaching the
 * listener could otherwise lift a ban.
 */
export async function bansApi(method: string, url: URL, req: IncomingMessage, bans: BanList | undefined, tokenSet: boolean, readJson: () => Promise<unknown>): Promise<ApiReply> {
  if (method === 'GET') return { status: 200, body: { bans: (bans?.store.list() ?? []).map(banView), stateFile: bans?.stateFile ?? null } };
  if (method !== 'POST' && method !== 'DELETE') return { status: 405, body: { error: 'method not allowed' }, headers: { allow: 'GET, POST, DELETE' } };
  if (!tokenSet) return { status: 403, body: { error: 'changing bans needs admin.token to be set' } };
  if (!bans) return { status: 503, body: { error: 'the ban list is not running' } };
  if (method === 'DELETE') {
    const address = url.searchParams.get('address');
    if (!address) return { status: 400, body: { error: 'address: missing (DELETE /api/bans?address=203.0.113.7)' } };
    const removed = bans.remove(address);
    return removed ? { status: 200, body: { removed: banView(removed) } } : { status: 404, body: { error: `address: no ban on ${address}` } };
  }
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return { status: 415, body: { error: 'expected a JSON body (content-type: application/json)' } };
  let body: unknown;
  try {
    body = await readJson();
  } catch (err) {
    return { status: 400, body: { error: `body: ${(err as Error).message}` } };
  }
  const b = (body ?? {}) as { address?: unknown; duration?: unknown; reason?: unknown };
  if (typeof b.address !== 'string') return { status: 400, body: { error: 'address: expected a string such as 203.0.113.7 or 2001:db8::/64' } };
  const durationMs = typeof b.duration === 'string' ? parseDurationMs(b.duration) : undefined;
  if (durationMs === undefined || durationMs <= 0) return { status: 400, body: { error: 'duration: expected a duration such as 1h or 30m' } };
  if (durationMs > MAX_API_BAN_MS) return { status: 400, body: { error: 'duration: at most 366d' } };
  if (b.reason !== undefined && (typeof b.reason !== 'string' || b.reason.length > 200)) return { status: 400, body: { error: 'reason: expected a string of at most 200 characters' } };
  const r = bans.add({ target: b.address, source: 'api', reason: (b.reason as string | undefined) || 'added through the admin API', durationMs });
  if (typeof r === 'string') return { status: 400, body: { error: r.replace(/^target:/, 'address:') } };
  return { status: 201, body: { ban: banView(r) } };
}
