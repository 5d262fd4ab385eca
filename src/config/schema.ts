import { z } from 'zod';
import { DEFAULT_REPLY_BUDGET } from '../core/reply-budget.js';
import { parseHostPort, parseListenUrl } from '../core/address.js';
import { exposeSchemas } from './gateway-schema.js';
import { observeShape } from './observe-schema.js';
import { duration, size } from './unit-schemas.js';
import { lapiUrlIssue, MIN_INTERVAL_MS } from './crowdsec-settings.js';
import { dockerSchema } from './docker-config.js';
import { expecting } from './issue-text.js';
import { bandwidthSchema } from './bandwidth-schema.js';
import { routeMatchSchema } from './route-match.js';
import { parseListenSpan, parseUpstreamSpan } from './port-span.js';
import { schedulerSchema } from './scheduler-schema.js';
import { eitherBy, isPoolList, poolMembersSchema, poolShape, type RawUpstream } from './pool-schema.js';

/**
 * The config file's shape. Every object is strict (unknown keys are errors) and every default is
 * here, in one place; docs/configuration.md lists the same defaults.
 */
const count = (max = 10_000_000) => z.number().int().min(0).max(max);

const rate = (perSecond: number, burst: number) =>
  z
    .strictObject({
      perSecond: z.number().min(0).default(perSecond),
      burst: count().default(burst),
    })
    .prefault({});

// No default here: it depends on where the settings apply (replyBudgetOf).
const replyBudget = z
  .union([
    z.literal('off'),
    z.strictObject({ ratio: z.number().min(1).max(1_000_000).default(DEFAULT_REPLY_BUDGET.ratio), window: duration.prefault('10s') }),
  ])
  .optional();

const udp = z
  .strictObject({
    idleTimeout: duration.prefault('30s'),
    maxSessions: count().default(1024),
    maxSessionsPerSource: count().default(256),
    rate: rate(50, 100),
    ratePerSource: rate(20, 40),
    onLimit: z.enum(['reject', 'evict-lru']).default('reject'),
    setupQueue: count(4096).default(128),
    maxDatagramBytes: z.number().int().min(1).max(65535).default(65507),
    replyBudget,
    /** Datagrams/s from one client above which it gets a socket of its own (docs/expose.md); 0: never. */
    isolateAbove: z.number().int().min(0).max(100_000_000).optional(),
    /** A pooled route's live sessions when their member goes down (docs/pools.md). */
    failover: z.enum(['move', 'keep']).optional(),
  })
  .prefault({});

const tcp = z
  .strictObject({
    connectTimeout: duration.prefault('10s'),
    idleTimeout: duration.prefault('10m'),
    maxConnections: count().default(4096),
    maxConnectionsPerSource: count().default(256),
    rate: rate(0, 0),
    ratePerSource: rate(0, 0),
  })
  .prefault({});

const listen = expecting(z.string(), 'a listen address such as udp://0.0.0.0:5353 or tcp://[::]:443').transform((text, ctx) => {
  const r = parseListenUrl(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

const upstream = expecting(z.string(), 'host:port such as 127.0.0.1:53 or "[::1]:53"').transform((text, ctx) => {
  const r = parseHostPort(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/** A route's `listen` and `upstream` may end in a port range (`:N-M`, docs/ranges.md). */
const routeListen = expecting(z.string(), 'a listen address such as udp://0.0.0.0:5353, tcp://[::]:443 or udp://0.0.0.0:27000-27100').transform((text, ctx) => {
  const r = parseListenSpan(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

const routeUpstream = expecting(z.string(), 'host:port such as 127.0.0.1:53, "[::1]:53" or 10.0.0.5:27000-27100').transform((text, ctx) => {
  const r = parseUpstreamSpan(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

const stringList = z.array(z.string()).default([]);

/** Checked in depth by admission/acl (aclSpecIssues), which knows CIDR and country rules. */
const acl = z.strictObject({
  allow: stringList,
  deny: stringList,
  countries: z
    .strictObject({ allow: stringList, deny: stringList, unknown: z.enum(['unlisted', 'deny', 'allow']).default('unlisted') })
    .prefault({}),
  observeOnly: z.boolean().default(false),
  crowdsec: z.boolean().default(false),
});

const proxyProtocol = z.strictObject({
  accept: stringList,
  send: z.enum(['v1', 'v2']).optional(),
  udp: z.enum(['every', 'first']).default('every'),
  headerTimeout: duration.prefault('5s'),
  untrustedWait: duration.prefault('50ms'),
  maxHeaderBytes: z.number().int().min(232).max(65551).default(4096),
});

/** The CrowdSec Local API the bouncer pulls from (docs/crowdsec.md). */
const crowdsec = z.strictObject({
  url: z.string().superRefine((text, ctx) => {
    const m = lapiUrlIssue(text);
    if (m) ctx.addIssue({ code: 'custom', message: m });
  }),
  apiKey: z.string().min(1, 'is required (cscli bouncers add <name>)').regex(/^[\x21-\x7e]+$/, 'must be visible ASCII without spaces'),
  mode: z.enum(['enforce', 'observe']).default('enforce'),
  onUnavailable: z.enum(['allow', 'deny']).default('allow'),
  interval: duration.prefault('10s').refine((ms) => ms >= MIN_INTERVAL_MS, `must be at least ${MIN_INTERVAL_MS}ms`),
  timeout: duration.prefault('5s').refine((ms) => ms >= MIN_INTERVAL_MS, `must be at least ${MIN_INTERVAL_MS}ms`),
  /** How much of a client an Ip decision bans (admission/source-key.ts); default: the address. */
  banPrefix: z
    .strictObject({ ipv4: z.number().int().min(0).max(32).default(32), ipv6: z.number().int().min(0).max(128).default(128) })
    .optional(),
});

/** What one source is for per-source caps and rates (admission/source-key.ts). */
const sourcePrefix = z
  .strictObject({
    ipv4: z.number().int().min(0).max(32).default(32),
    ipv6: z.number().int().min(0).max(128).default(64),
  });

/** "`count` events within `window`" of a ban rule (docs/bans.md). */
const banCondition = z.strictObject({ count: z.number().int().min(1).max(10_000), window: duration });
/** "more than `bytes` within `window`" of a ban rule (docs/bans.md). */
const bytesCondition = z.strictObject({ bytes: size, window: duration });

/** `bans:` (docs/bans.md): behaviour rules, networks never banned, the state directory. */
const bans = z.strictObject({
  rules: z
    .record(
      z.string(),
      z.strictObject({
        when: z
          .strictObject({ newSessionsPer: banCondition.optional(), rejectionsPer: banCondition.optional(), bytesPer: bytesCondition.optional() })
          .refine((w) => w.newSessionsPer !== undefined || w.rejectionsPer !== undefined || w.bytesPer !== undefined, 'needs newSessionsPer, rejectionsPer or bytesPer'),
        ban: duration,
        escalate: z.number().min(1).max(1000).default(1),
        maxBan: duration.prefault('30d'),
        scope: z
          .strictObject({ ipv4: z.number().int().min(0).max(32).default(32), ipv6: z.number().int().min(0).max(128).default(64) })
          .prefault({}),
        mode: z.enum(['enforce', 'observe']).default('enforce'),
      }),
    )
    .default({}),
  allow: stringList,
  default: stringList,
  stateDir: z.string().min(1).optional(),
  maxTracked: z.number().int().min(1).max(10_000_000).default(100_000),
});

/** One upstream, or a list of pool members (docs/pools.md): a list is checked as a pool, anything else as one upstream. */
const routeUpstreamOrPool = eitherBy(
  isPoolList,
  poolMembersSchema.transform((members): RawUpstream => ({ upstream: members[0]!.address, members })),
  routeUpstream.transform((u): RawUpstream => u),
);

export const routeSchema = z.strictObject({
  listen: routeListen,
  upstream: routeUpstreamOrPool,
  ...poolShape((text) => duration.prefault(text)),
  udp,
  tcp,
  acl: acl.optional(),
  proxyProtocol: proxyProtocol.optional(),
  sourcePrefix: sourcePrefix.optional(),
  /** Names of `bans.rules` that watch this route; absent = `bans.default`. */
  bans: z.array(z.string()).optional(),
  bandwidth: bandwidthSchema.optional(),
  /** Routing by TLS server name on a shared listen address (docs/sni.md). */
  match: routeMatchSchema.optional(),
});

/** `gateway:` and `agent:` (docs/expose.md), built from the route parts above. */
const expose = exposeSchemas({ duration, udp, tcp, acl, listen, replyBudget });

export const configSchema = z.strictObject({
  routes: expecting(z.record(z.string(), routeSchema), 'a map of route names, each with listen: and upstream:').default({}),
  acl: acl.optional(),
  /** Default `sourcePrefix` of routes that do not set their own. */
  sourcePrefix: sourcePrefix.optional(),
  geoip: z.strictObject({ database: z.string().min(1) }).optional(),
  crowdsec: crowdsec.optional(),
  bans: bans.optional(),
  accessLog: z.strictObject({ output: z.string().min(1).default('stdout') }).prefault({}),
  log: z
    .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
    .prefault({}),
  lifecycle: z.strictObject({ drainTimeout: duration.prefault('30s'), watch: z.boolean().default(false) }).prefault({}),
  /** How UDP datagrams move (docs/datapath.md): `auto` = native where the addon loads, else js. */
  datapath: z.enum(['auto', 'native', 'js']).default('auto'),
  /**
   * The TCP congestion control of Sluice's own sockets on the native stream datapath
   * (docs/datapath.md "Congestion control of the engine's sockets"): auto, system, or a kernel algorithm's name.
   */
  congestion: z
    .string()
    .regex(/^[a-z0-9_]{1,15}$/, 'auto, system, or the name of a TCP congestion control (cubic, bbr, reno, ...)')
    .default('auto'),
  /** The scheduler slice of the process's threads (docs/configuration.md, "scheduler"). */
  scheduler: schedulerSchema,
  gateway: expose.gateway.optional(),
  agent: expose.agent.optional(),
  /** Routes from container labels (docs/containers.md). */
  docker: dockerSchema.optional(),
  ...observeShape,
});

export type RawConfig = z.output<typeof configSchema>;
