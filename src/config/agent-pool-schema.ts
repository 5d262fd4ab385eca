import { z } from 'zod';
import { expecting } from './issue-text.js';

/*
 * Agent pools (docs/pools.md, "Agent pools"): `agent.expose.<name>.{group, groupKey, health}` and
 * `gateway.groups.<name>`. gateway-schema.ts puts these parts into its objects and compiles them
 * with the functions here.
 */

/** At least this many characters of group key, as for tokens: 16 random hex characters are 64 bits. */
export const MIN_GROUP_KEY_CHARS = 16;
const GROUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
export const BALANCERS = ['source-hash', 'round-robin', 'least-conn', 'p2c'] as const;
export type PoolBalance = (typeof BALANCERS)[number];

/** `hex:ffff...` or plain text -> bytes; a string on error. */
export function parsePayload(text: string): Buffer | string {
  if (!text.startsWith('hex:')) return Buffer.from(text, 'utf8');
  const hex = text.slice(4).replace(/[\s:]/g, '');
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) return `"${text}" is not hex: and an even number of hex digits`;
  return Buffer.from(hex, 'hex');
}

/** The agent's check of its own local service: how often, how long to wait, and how many results turn it. */
export interface LocalHealthSettings {
  readonly kind: 'tcp' | 'udp';
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Passing checks in a row that bring a down service up. */
  readonly rise: number;
  /** Failing checks in a row that take an up service down. */
  readonly fall: number;
  /** UDP: the probe (required); TCP: optional bytes sent after connecting. Hex (the config is frozen; a Buffer cannot be). */
  readonly sendHex: string | undefined;
  /** What the reply must start with, hex; UDP: any reply when absent. */
  readonly expectHex: string | undefined;
}

/** `gateway.groups.<name>`: who may join, the shared key, and how the pool balances and fails over. */
export interface AgentGroup {
  readonly name: string;
  readonly agents: readonly string[];
  readonly key: string;
  /** Absent: source-hash for UDP, least-conn for TCP. */
  readonly balance: PoolBalance | undefined;
  /** Live UDP sessions on a member that goes down: `move` to another member, or `keep` (they end with it). */
  readonly udpFailover: 'move' | 'keep';
}

/** The pool part of one `agent.expose.<name>`. */
export interface ExposePoolSettings {
  readonly group: string;
  readonly groupKey: string;
  readonly health: LocalHealthSettings | undefined;
}

export function agentPoolSchemas(duration: z.ZodType<number, string>) {
  const payload = expecting(z.string(), 'bytes as text, or hex: and hex digits').transform((text, ctx) => {
    const r = parsePayload(text);
    if (typeof r === 'string') {
      ctx.addIssue({ code: 'custom', message: r });
      return z.NEVER;
    }
    return r;
  });
  const count = z.number().int().min(1).max(100);
  const check = {
    interval: duration.prefault('2s'),
    timeout: duration.prefault('1s'),
    rise: count.default(2),
    fall: count.default(3),
    expect: payload.optional(),
  };
  const health = z
    .strictObject({
      tcp: z.strictObject({ ...check, send: payload.optional() }).optional(),
      udp: z.strictObject({ ...check, send: payload }).optional(),
    })
    .refine((h) => (h.tcp === undefined) !== (h.udp === undefined), 'set one of tcp: or udp:');
  const groupName = z.string().regex(GROUP_NAME, 'group names use letters, digits, _ . - (1-64, not starting with . or -)');
  const key = z.string().min(MIN_GROUP_KEY_CHARS, `use a group key of at least ${MIN_GROUP_KEY_CHARS} characters (e.g. openssl rand -hex 24)`);
  const expose = { group: groupName.optional(), groupKey: key.optional(), health: health.optional() };
  const groups = expecting(
    z.record(
      groupName,
      z.strictObject({
        agents: z.array(z.string().min(1)).min(1),
        key,
        balance: z.enum(BALANCERS).optional(),
        udp: z.strictObject({ failover: z.enum(['move', 'keep']).default('move') }).prefault({}),
      }),
    ),
    'a map of group names, each with agents: and key:',
  ).default({});
  return { expose, groups };
}

type Schemas = ReturnType<typeof agentPoolSchemas>;
type RawHealth = NonNullable<z.output<Schemas['expose']['health']>>;
export type RawGroups = z.output<Schemas['groups']>;
export interface RawExposePool {
  group?: string;
  groupKey?: string;
  health?: RawHealth;
}

/** Cross-key checks of one expose entry's pool keys. */
export function checkExposePool(e: RawExposePool & { remote?: { remote: { port: number; transport: string }; ports?: number; serverName?: string } }, at: (path: string[], message: string) => void): void {
  if (e.group !== undefined && e.groupKey === undefined) at(['groupKey'], `joining group "${e.group}" needs its key (the same as gateway.groups.${e.group}.key)`);
  if (e.group === undefined && e.groupKey !== undefined) at(['groupKey'], 'is set but group is not');
  if (e.health !== undefined && e.group === undefined) at(['health'], "is the pool member's own check: set group too (a single service is checked by its users)");
  if (e.group !== undefined && !e.remote) at(['group'], 'a pool member needs remote (the public port the pool shares)');
  if (e.group !== undefined && e.remote?.ports !== undefined) at(['remote'], 'a pool member publishes one port: port ranges are not pooled yet');
  else if (e.group !== undefined && e.remote?.serverName === undefined && e.remote?.remote.port === 0) at(['remote'], 'a pool member needs a fixed port (or a name, tls:// or quic://): every member asks for the same one');
  const c = e.health?.udp ?? e.health?.tcp;
  if (c && c.timeout > c.interval) at(['health', e.health!.udp ? 'udp' : 'tcp', 'timeout'], 'must be at most interval');
  if (e.health?.udp && e.remote && e.remote.remote.transport !== 'udp') at(['health', 'udp'], `a udp check on a ${e.remote.remote.transport}:// service; use tcp:`);
  if (e.health?.tcp && e.remote && e.remote.remote.transport !== 'tcp') at(['health', 'tcp'], `a tcp check on a ${e.remote.remote.transport}:// service; use udp:`);
}

/** Cross-key checks of `gateway.groups`: its agents must be configured agents. */
export function checkGroups(groups: RawGroups, agents: ReadonlySet<string>, at: (path: (string | number)[], message: string) => void): void {
  for (const [name, g] of Object.entries(groups)) {
    g.agents.forEach((a, i) => {
      if (!agents.has(a)) at(['gateway', 'groups', name, 'agents', i], `"${a}" is not in gateway.agents`);
    });
  }
}

export function compileExposePool(e: RawExposePool): { pool?: ExposePoolSettings } {
  if (e.group === undefined || e.groupKey === undefined) return {};
  const h = e.health;
  const c = h?.udp ?? h?.tcp;
  const health: LocalHealthSettings | undefined = c && {
    kind: h!.udp ? 'udp' : 'tcp',
    intervalMs: c.interval,
    timeoutMs: c.timeout,
    rise: c.rise,
    fall: c.fall,
    sendHex: c.send?.toString('hex'),
    expectHex: c.expect?.toString('hex'),
  };
  return { pool: { group: e.group, groupKey: e.groupKey, health } };
}

export function compileGroups(groups: RawGroups): ReadonlyMap<string, AgentGroup> {
  return new Map(
    Object.entries(groups).map(([name, g]) => [name, { name, agents: g.agents, key: g.key, balance: g.balance, udpFailover: g.udp.failover }]),
  );
}
