import type { IncomingMessage } from 'node:http';
import { parseDurationMs } from '../core/duration.js';
import type { BanRequest } from '../admission/bans/ban-store.js';
import { parseCidr, type Cidr } from '../core/cidr.js';
import { cscliDelete, type CrowdsecBanView } from '../admission/crowdsec/ban-view.js';
import type { BanInfo } from '../observe/events.js';

/** What /api/bans needs of the ban list (admission/bans/bans.ts). */
export interface BanList {
  readonly store: { list(): BanInfo[] };
  readonly stateFile: string | undefined;
  add(req: BanRequest): BanInfo | string;
  remove(target: string): BanInfo | undefined;
}

/** What /api/bans needs of the CrowdSec bouncer (crowdsec-bouncer.ts): its decisions, read only. */
export interface CrowdsecBans {
  readonly state: string;
  readonly settings: { readonly mode: string };
  bans(offset: number, limit: number): { total: number; bans: CrowdsecBanView[] };
  bansOn(target: Cidr): CrowdsecBanView[];
  banOf(sourceKey: string): CrowdsecBanView | undefined;
}

/** An answer for the admin server to send. */
export interface ApiReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

/** Bans listed by GET without `limit`, and at most (CrowdSec alone may hold 100,000 decisions). */
export const DEFAULT_BANS_LISTED = 100;
export const MAX_BANS_LISTED = 1000;

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
export async function bansApi(
  method: string,
  url: URL,
  req: IncomingMessage,
  bans: BanList | undefined,
  tokenSet: boolean,
  readJson: () => Promise<unknown>,
  crowdsec?: CrowdsecBans,
): Promise<ApiReply> {
  if (method === 'GET') return listBans(url, bans, crowdsec);
  if (method !== 'POST' && method !== 'DELETE') return { status: 405, body: { error: 'method not allowed' }, headers: { allow: 'GET, POST, DELETE' } };
  if (!tokenSet) return { status: 403, body: { error: 'changing bans needs admin.token to be set' } };
  if (!bans) return { status: 503, body: { error: 'the ban list is not running' } };
  if (method === 'DELETE') {
    const address = url.searchParams.get('address');
    if (!address) return { status: 400, body: { error: 'address: missing (DELETE /api/bans?address=203.0.113.7)' } };
    return removeBan(address, bans, crowdsec);
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

/**
 * GET /api/bans?limit=N&offset=M&source=S: the ban list's own bans (in the list's order), then
 * CrowdSec's live ban decisions (in the order received), one page of them, with the total.
 */
function listBans(url: URL, bans: BanList | undefined, crowdsec: CrowdsecBans | undefined): ApiReply {
  const limit = countParam(url, 'limit', DEFAULT_BANS_LISTED);
  const offset = countParam(url, 'offset', 0);
  if (typeof limit === 'string') return { status: 400, body: { error: limit } };
  if (typeof offset === 'string') return { status: 400, body: { error: offset } };
  if (limit > MAX_BANS_LISTED) return { status: 400, body: { error: `limit: at most ${MAX_BANS_LISTED} (page with offset)` } };
  const source = url.searchParams.get('source') ?? undefined;
  const own = source === 'crowdsec' ? [] : (bans?.store.list() ?? []).filter((b) => source === undefined || b.source === source);
  const page: unknown[] = own.slice(offset, offset + limit).map(banView);
  let total = own.length;
  let cs: { state: string; mode: string; bans: number } | null = null;
  if (crowdsec) {
    const wanted = source === undefined || source === 'crowdsec';
    const r = crowdsec.bans(wanted ? Math.max(0, offset - own.length) : 0, wanted ? limit - page.length : 0);
    if (wanted) {
      total += r.total;
      page.push(...r.bans);
    }
    cs = { state: crowdsec.state, mode: crowdsec.settings.mode, bans: r.total };
  }
  return { status: 200, body: { bans: page, total, offset, limit, stateFile: bans?.stateFile ?? null, crowdsec: cs } };
}

/**
 * DELETE /api/bans?address=A: lifts the ban list's ban on A. CrowdSec's decisions are not
 * Sluice's to lift (it is a bouncer; the LAPI would send them again): a target only CrowdSec bans
 * is refused with 409 and the cscli command that removes it.
 */
function removeBan(address: string, bans: BanList, crowdsec: CrowdsecBans | undefined): ApiReply {
  const removed = bans.remove(address);
  const cidr = parseCidr(address);
  const decisions = crowdsec && typeof cidr !== 'string' ? crowdsec.bansOn(cidr) : [];
  if (removed) return { status: 200, body: { removed: banView(removed), ...(decisions.length > 0 ? { crowdsec: decisions } : {}) } };
  const single = typeof cidr !== 'string' && cidr.prefix === (cidr.family === 4 ? 32 : 128);
  const covering = decisions.length === 0 && single ? crowdsec?.banOf(cidr.text.slice(0, cidr.text.lastIndexOf('/'))) : undefined;
  const held = decisions.length > 0 ? decisions : covering ? [covering] : [];
  if (held.length === 0) return { status: 404, body: { error: `address: no ban on ${address}` } };
  const d = held[0]!;
  const what = covering ? `${address} is banned by CrowdSec's decision on ${d.target}` : `the ban on ${d.target} is CrowdSec's decision`;
  return {
    status: 409,
    body: {
      error: `address: ${what} (${d.reason}); Sluice enforces CrowdSec's decisions but does not own them: remove it with \`${held.map(cscliDelete).join('` and `')}\``,
      crowdsec: held,
    },
  };
}

/** A non-negative integer query parameter, `fallback` when absent, or a message naming it. */
function countParam(url: URL, name: string, fallback: number): number | string {
  const v = url.searchParams.get(name);
  if (v === null) return fallback;
  return /^\d{1,9}$/.test(v) ? Number(v) : `${name}: expected a whole number, got "${v.slice(0, 40)}"`;
}
