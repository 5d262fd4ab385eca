import { z } from 'zod';
import { parseHostPort, type HostPort } from '../core/address.js';
import { configIssueText, expecting } from './issue-text.js';

/*
 * Upstream pools of a route (docs/pools.md): `upstream` as a list of members, `balance`,
 * `health` (active checks and passive settings), `udp.failover`. Compiled into RouteConfig.pool.
 */

/** Most members one route's pool may list (the `member` metric label is bounded by the config). */
export const MAX_POOL_MEMBERS = 64;

export type BalanceName = 'round-robin' | 'least-conn' | 'p2c' | 'source-hash';

export interface PoolMemberConfig {
  /** An IP literal or a host name (resolved, and again on its TTL; each address one member). */
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly backup: boolean;
}

/** Bytes a check sends or expects, as hex (so the frozen config holds no Buffer). */
export interface CheckBytes {
  readonly hex: string;
  /** `prefix`: the reply starts with them (written `hex:...`); `contains`: the reply contains them (text). */
  readonly match: 'prefix' | 'contains';
}

export interface PoolCheckConfig {
  readonly transport: 'udp' | 'tcp';
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly jitter: number;
  readonly send?: string;
  readonly expect?: CheckBytes;
}

export interface PoolSpec {
  readonly members: readonly PoolMemberConfig[];
  readonly balance: BalanceName;
  /** The check of the route's own transport; absent = passive health only. */
  readonly check?: PoolCheckConfig;
  readonly passive: { readonly ejectMs: number; readonly maxEjectMs: number; readonly silentDatagrams: number; readonly silentMs: number };
  readonly failover: 'move' | 'keep';
}

/** `hex:ffff54` or text (optionally `text:...`), as bytes in hex; undefined with a reason when malformed. */
export function checkBytes(text: string): { hex: string; match: 'prefix' | 'contains' } | string {
  if (text.startsWith('hex:')) {
    const hex = text.slice(4).replace(/[\s:]/g, '').toLowerCase();
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-f]+$/.test(hex)) return `"${text}" is not hex bytes (hex: then pairs of 0-9a-f)`;
    return { hex, match: 'prefix' };
  }
  const body = text.startsWith('text:') ? text.slice(5) : text;
  if (body.length === 0) return 'must not be empty';
  return { hex: Buffer.from(body, 'utf8').toString('hex'), match: 'contains' };
}

const memberAddress = expecting(z.string(), 'host:port such as 10.0.0.1:27015 or "[2001:db8::1]:27015"').transform((text, ctx) => {
  const r = parseHostPort(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: /:\d+-\d+$/.test(text) ? `a pool member is one port, not a range ("${text}")` : r });
    return z.NEVER;
  }
  return r;
});

const memberObject = z.strictObject({
  address: memberAddress,
  weight: z.number().int().min(1).max(1000).default(1),
  backup: z.boolean().default(false),
});

/**
 * `yes` when `which(value)`, else `no`, with each one's own issues (paths and words) as if it
 * stood alone: a union would report a mismatch of both as one vague "another type".
 */
export function eitherBy<T>(which: (v: unknown) => boolean, yes: z.ZodType<T>, no: z.ZodType<T>): z.ZodType<T> {
  return z.unknown().transform((v, ctx) => {
    const r = (which(v) ? yes : no).safeParse(v, { error: configIssueText });
    if (r.success) return r.data;
    for (const issue of r.error.issues) {
      if (issue.code === 'unrecognized_keys') for (const k of issue.keys) ctx.addIssue({ code: 'custom', path: [...issue.path, k], message: `unknown key "${k}"` });
      else ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    }
    return z.NEVER;
  }) as unknown as z.ZodType<T>;
}

/**
 * True for a list meant as pool members. `upstream: [::1]:53` unquoted is a YAML list too (of
 * "::1"); it is left to the single-upstream check, which names that trap.
 */
export function isPoolList(v: unknown): boolean {
  return Array.isArray(v) && !(v.length === 1 && typeof v[0] === 'string' && /^[0-9a-f]*:[0-9a-f:]*$/i.test(v[0]));
}

/** One list entry: `host:port`, or `{ address, weight, backup }`. */
export const poolMemberSchema = z.preprocess((v) => (typeof v === 'string' ? { address: v } : v), memberObject);

export const poolMembersSchema = z.array(poolMemberSchema).min(1).max(MAX_POOL_MEMBERS);

/** A pool's parsed member list, before compile. */
export type RawPoolMember = { address: HostPort; weight: number; backup: boolean };

/** A route's parsed `upstream`: one host:port (maybe a port range), or pool members (the first also as `upstream`). */
export interface RawUpstream {
  readonly upstream: HostPort;
  readonly ports?: number;
  readonly members?: readonly RawPoolMember[];
}

const bytesText = expecting(z.string(), 'bytes as hex:ffffffff54 or as text').transform((text, ctx) => {
  const r = checkBytes(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/** The pool keys of a route's schema, given the duration type schema.ts defines. */
export function poolShape(duration: (defaultText: string) => z.ZodType<number, string | undefined>) {
  const thresholds = {
    rise: z.number().int().min(1).max(100).default(2),
    fall: z.number().int().min(1).max(100).default(3),
    jitter: z.number().min(0).max(1).default(0.1),
  };
  return {
    balance: z.enum(['round-robin', 'least-conn', 'p2c', 'source-hash']).optional(),
    health: z
      .strictObject({
        udp: z.strictObject({ ...thresholds, interval: duration('2s'), timeout: duration('1s'), send: bytesText, expect: bytesText.optional() }).optional(),
        tcp: z.strictObject({ ...thresholds, interval: duration('2s'), timeout: duration('1s'), send: bytesText.optional(), expect: bytesText.optional() }).optional(),
        passive: z
          .strictObject({
            ejectTime: duration('10s'),
            maxEjectTime: duration('5m'),
            silentDatagrams: z.number().int().min(0).max(1_000_000).default(0),
            silentTime: duration('10s'),
          })
          .optional(),
      })
      .optional(),
  };
}

/** The parts of a parsed route the pool checks and compile read. */
export interface RawPoolRoute {
  readonly listen: { readonly listen: { readonly transport: 'udp' | 'tcp' }; readonly ports?: number };
  readonly upstream: { readonly upstream: HostPort; readonly ports?: number; readonly members?: readonly RawPoolMember[] };
  readonly balance?: BalanceName;
  readonly health?: {
    readonly udp?: { interval: number; timeout: number; rise: number; fall: number; jitter: number; send: CheckBytes; expect?: CheckBytes };
    readonly tcp?: { interval: number; timeout: number; rise: number; fall: number; jitter: number; send?: CheckBytes; expect?: CheckBytes };
    readonly passive?: { ejectTime: number; maxEjectTime: number; silentDatagrams: number; silentTime: number };
  };
  readonly udp?: { readonly failover?: 'move' | 'keep' };
}

/** True when the route is a pool: a member list, or `balance`/`health` on one upstream (a pool of one). */
export function isPooled(r: RawPoolRoute): boolean {
  return r.upstream.members !== undefined || r.balance !== undefined || r.health !== undefined;
}

/** Checks across a pooled route's keys (docs/pools.md "What is refused"). */
export function checkPools(routes: Record<string, RawPoolRoute>, at: (path: (string | number)[], message: string) => void): void {
  for (const [name, r] of Object.entries(routes)) {
    const base = ['routes', name];
    const transport = r.listen.listen.transport;
    if (!isPooled(r)) {
      if (r.udp?.failover !== undefined) at([...base, 'udp', 'failover'], 'failover applies to a pool; give upstream a list of members');
      continue;
    }
    if ((r.listen.ports ?? 1) > 1 || r.upstream.ports !== undefined) at([...base, 'upstream'], 'a pool cannot serve a port range (each listen port maps to its own upstream port); use a single-port listen');
    const members = r.upstream.members ?? [];
    const seen = new Set<string>();
    members.forEach((m, i) => {
      const k = `${m.address.host}:${m.address.port}`;
      if (seen.has(k)) at([...base, 'upstream', i], `${k} is listed twice`);
      seen.add(k);
    });
    if (members.length > 0 && members.every((m) => m.backup)) at([...base, 'upstream'], 'every member is a backup; at least one must be a primary');
    const h = r.health;
    if (h?.udp && transport === 'tcp') at([...base, 'health', 'udp'], 'a UDP check on a tcp:// route; use health.tcp');
    if (h?.tcp && transport === 'udp') at([...base, 'health', 'tcp'], 'a TCP check on a udp:// route; use health.udp');
    for (const kind of ['udp', 'tcp'] as const) {
      const c = h?.[kind];
      if (c && c.timeout > c.interval) at([...base, 'health', kind, 'timeout'], `must not be longer than interval (${c.interval}ms): one check per member at a time`);
      if (c && c.interval < 100) at([...base, 'health', kind, 'interval'], 'must be at least 100ms (checks are bounded in rate)');
    }
    if (h?.passive && h.passive.maxEjectTime < h.passive.ejectTime) at([...base, 'health', 'passive', 'maxEjectTime'], 'must not be shorter than ejectTime');
  }
}

/** The route's compiled pool; undefined for a route that is not one. */
export function compilePool(r: RawPoolRoute): PoolSpec | undefined {
  if (!isPooled(r)) return undefined;
  const transport = r.listen.listen.transport;
  const members = r.upstream.members ?? [{ address: r.upstream.upstream, weight: 1, backup: false }];
  const c = transport === 'udp' ? r.health?.udp : r.health?.tcp;
  const p = r.health?.passive;
  return {
    members: members.map((m) => ({ host: m.address.host, port: m.address.port, weight: m.weight, backup: m.backup })),
    // Source hash for UDP: a game or VPN client keeps its server without per-session state;
    // least-conn for TCP: connections differ in length, so counts beat turns (docs/pools.md).
    balance: r.balance ?? (transport === 'udp' ? 'source-hash' : 'least-conn'),
    ...(c
      ? {
          check: {
            transport,
            intervalMs: c.interval,
            timeoutMs: c.timeout,
            rise: c.rise,
            fall: c.fall,
            jitter: c.jitter,
            ...(c.send ? { send: c.send.hex } : {}),
            ...(c.expect ? { expect: c.expect } : {}),
          },
        }
      : {}),
    passive: p
      ? { ejectMs: p.ejectTime, maxEjectMs: p.maxEjectTime, silentDatagrams: p.silentDatagrams, silentMs: p.silentTime }
      : { ejectMs: 10_000, maxEjectMs: 300_000, silentDatagrams: 0, silentMs: 10_000 },
    failover: r.udp?.failover ?? 'move',
  };
}
