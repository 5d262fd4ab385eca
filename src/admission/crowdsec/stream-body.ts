import type { Cidr } from '../../core/cidr.js';
import { mappedWords } from '../../core/cidr.js';
import { formatIpValue, parseIpValue, type IpValue } from '../../core/ip-value.js';

/**
 * One ban as the store keeps it, parsed from a LAPI decision (models.Decision in CrowdSec's
 * swagger: id, origin, type, scope, value, duration, scenario, simulated, until).
 */
export interface Ban {
  /** Identity across pulls: `#<id>` when the LAPI gave a numeric id, otherwise scope|value|origin|scenario. */
  readonly key: string;
  readonly target: BanTarget;
  readonly scenario: string;
  readonly origin: string;
  /** Milliseconds of ban left when the answer was read (Infinity when the LAPI gave none). */
  readonly remainingMs: number;
}

export type BanTarget = { readonly scope: 'ip'; readonly ip: IpValue } | { readonly scope: 'range'; readonly cidr: Cidr };

/** Why a decision in an answer was not kept. Stable strings: counted in stats and metrics. */
export type IgnoredReason =
  | 'scope' //      not Ip or Range (Country, AS, Username, ...): nothing an L4 relay can match here
  | 'type' //       not ban (captcha, throttle, custom): an L4 relay can only refuse
  | 'simulated' //  the scenario is in simulation mode
  | 'expired' //    the duration had already run out
  | 'invalid'; //   not an object, value not an address or network, fields of the wrong type

export interface StreamBody {
  readonly added: readonly Ban[];
  /** Keys of decisions to drop. Deletions are matched by identity only, so the type does not matter. */
  readonly deleted: readonly string[];
  readonly ignored: Readonly<Partial<Record<IgnoredReason, number>>>;
}

/**
 * Parses the body of GET /v1/decisions/stream: `{"new": [...] | null, "deleted": [...] | null}`.
 * Returns a message for people when the body as a whole is unusable (not JSON, not that shape);
 * single bad decisions are skipped and counted instead, so one odd entry cannot stop every update.
 * Pure: no clock (durations stay relative), no I/O.
 */
export function parseStreamBody(text: string): StreamBody | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return `not JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 80))}`;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return `expected an object with "new" and "deleted", got ${describe(raw)}`;
  }
  const body = raw as { new?: unknown; deleted?: unknown };
  for (const k of ['new', 'deleted'] as const) {
    if (body[k] !== undefined && body[k] !== null && !Array.isArray(body[k])) return `"${k}" must be an array or null, got ${describe(body[k])}`;
  }
  const ignored: Partial<Record<IgnoredReason, number>> = {};
  const skip = (r: IgnoredReason) => void (ignored[r] = (ignored[r] ?? 0) + 1);
  const added: Ban[] = [];
  for (const d of (body.new as unknown[] | null | undefined) ?? []) {
    const b = parseDecision(d, true);
    if (typeof b === 'string') skip(b);
    else added.push(b);
  }
  const deleted: string[] = [];
  for (const d of (body.deleted as unknown[] | null | undefined) ?? []) {
    const id = (d as { id?: unknown } | null)?.id;
    if (typeof id === 'number' && Number.isSafeInteger(id)) {
      deleted.push(`#${id}`); // the identity is enough, whatever the rest of the entry says
      continue;
    }
    const b = parseDecision(d, false);
    if (typeof b === 'string') {
      if (b === 'invalid') skip(b); // a deleted captcha or Country decision was never kept: nothing to count
    } else {
      deleted.push(b.key);
    }
  }
  return { added, deleted, ignored };
}

function parseDecision(d: unknown, isNew: boolean): Ban | IgnoredReason {
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return 'invalid';
  const o = d as Record<string, unknown>;
  if (typeof o.scope !== 'string' || typeof o.value !== 'string' || (isNew && typeof o.type !== 'string')) return 'invalid';
  const scope = o.scope.toLowerCase();
  if (scope !== 'ip' && scope !== 'range') return 'scope';
  const target = scope === 'ip' ? ipTarget(o.value) : rangeTarget(o.value);
  if (!target) return 'invalid';
  const scenario = typeof o.scenario === 'string' ? o.scenario : '';
  const origin = typeof o.origin === 'string' ? o.origin : '';
  const id = typeof o.id === 'number' && Number.isSafeInteger(o.id) ? o.id : undefined;
  const key = id !== undefined ? `#${id}` : `${scope}|${targetText(target)}|${origin}|${scenario}`;
  let remainingMs = Infinity;
  if (isNew) {
    if ((o.type as string).toLowerCase() !== 'ban') return 'type';
    if (o.simulated === true) return 'simulated';
    if (o.duration !== undefined && o.duration !== null) {
      const ms = typeof o.duration === 'string' ? parseGoDurationMs(o.duration) : undefined;
      if (ms === undefined) return 'invalid';
      if (ms <= 0) return 'expired';
      remainingMs = ms;
    }
  }
  return { key, target, scenario, origin, remainingMs };
}

function ipTarget(value: string): BanTarget | undefined {
  const ip = parseIpValue(value.trim());
  return ip && { scope: 'ip', ip };
}

/**
 * A Range value. Unlike config rules (parseCidr), host bits are cleared rather than refused:
 * CrowdSec stores what Go's net.ParseCIDR accepted, and a ban on `1.2.3.4/24` means the /24.
 * An IPv4-mapped network inside ::ffff:0:0/96 becomes the IPv4 network it maps.
 */
function rangeTarget(value: string): BanTarget | undefined {
  const text = value.trim();
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const ip = parseIpValue(text.slice(0, slash));
  if (!ip) return undefined;
  const isV6Text = text.slice(0, slash).includes(':');
  let prefix = Number(lenText);
  if (prefix > (isV6Text ? 128 : 32)) return undefined;
  let family = ip.family;
  let words = ip.words;
  if (isV6Text && ip.family === 4) {
    if (prefix >= 96) prefix -= 96;
    else {
      family = 6;
      words = mappedWords(ip.words[0]!);
    }
  }
  const network = words.map((w, i) => {
    const bits = Math.min(32, Math.max(0, prefix - i * 32));
    return bits === 0 ? 0 : bits === 32 ? w : (w & ~(0xffffffff >>> bits)) >>> 0;
  });
  const cidrText = `${formatIpValue({ family, words: network })}/${prefix}`;
  return { scope: 'range', cidr: { family, words: network, prefix, text: cidrText } };
}

export function targetText(t: BanTarget): string {
  return t.scope === 'ip' ? formatIpValue(t.ip) : t.cidr.text;
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const GO_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go time.Duration string as the LAPI writes `duration` (`3h59m58.9s`, `59.4s`,
 * `-2m0.5s` for an expired decision, `0s`). Returns milliseconds, or undefined when malformed.
 */
export function parseGoDurationMs(text: string): number | undefined {
  let i = 0;
  let sign = 1;
  if (text[0] === '-' || text[0] === '+') {
    sign = text[0] === '-' ? -1 : 1;
    i = 1;
  }
  if (text.slice(i) === '0') return 0;
  let total = 0;
  let parts = 0;
  GO_PART.lastIndex = i;
  while (GO_PART.lastIndex < text.length) {
    const m = GO_PART.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * GO_UNITS[m[2]!]!;
    parts++;
  }
  return parts === 0 ? undefined : sign * total;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `a string ${JSON.stringify(v.slice(0, 40))}` : typeof v;
}
