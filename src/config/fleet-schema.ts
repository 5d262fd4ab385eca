import { z } from 'zod';
import type { FleetSettings } from './fleet-settings.js';
import { parseRedisUrl } from './redis-url.js';

const GATEWAY_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/**
 * The `gateway.fleet` section (docs/fleet.md). `redis` and `name` are required; the rest has
 * defaults suited to a few gateways on one network: heartbeat 2s, registration TTL 10s (a dead
 * gateway leaves the view within 10 s), fleet limits off, `onRedisDown: local`.
 */
export function fleetSchema(duration: z.ZodType<number, string>) {
  return z
    .strictObject({
      redis: z.string().transform((text, ctx) => {
        const r = parseRedisUrl(text);
        if (typeof r === 'string') {
          ctx.addIssue({ code: 'custom', message: r });
          return z.NEVER;
        }
        return r;
      }),
      name: z.string().regex(GATEWAY_NAME, 'gateway names use letters, digits, _ . - (1-64, not starting with . or -)'),
      keyPrefix: z.string().regex(/^[A-Za-z0-9_.:{}-]{1,64}$/, 'use 1-64 letters, digits or _ . : { } -').default('sluice:'),
      heartbeat: duration.prefault('2s'),
      ttl: duration.prefault('10s'),
      onRedisDown: z.enum(['local', 'deny']).default('local'),
      publicAddresses: z.array(z.string().min(1)).default([]),
      tls: z.strictObject({ ca: z.string().min(1).optional(), serverName: z.string().min(1).optional() }).optional(),
      limits: z
        .strictObject({
          maxPerSource: z.number().int().min(0).max(10_000_000).default(0),
          ratePerSource: z.strictObject({ sessions: z.number().int().min(0).max(10_000_000).default(0), per: duration.prefault('1s') }).prefault({}),
        })
        .prefault({}),
    })
    .superRefine((f, ctx) => {
      if (f.heartbeat < 100) ctx.addIssue({ code: 'custom', path: ['heartbeat'], message: 'must be at least 100ms' });
      if (f.ttl < 2 * f.heartbeat) ctx.addIssue({ code: 'custom', path: ['ttl'], message: `must be at least twice heartbeat (${2 * f.heartbeat}ms), so one late heartbeat does not drop the gateway` });
      if (f.limits.ratePerSource.per < 1000) ctx.addIssue({ code: 'custom', path: ['limits', 'ratePerSource', 'per'], message: 'must be at least 1s' });
      if (f.tls && !f.redis.tls) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls settings need a rediss:// (or rediss+sentinel://) URL' });
    });
}

export type RawFleet = z.output<ReturnType<typeof fleetSchema>>;

/** `publicAddresses` defaults to the agent endpoint's address (`gateway.listen`). */
export function compileFleet(f: RawFleet, listen: { host: string; port: number }): FleetSettings {
  const tls = f.redis.tls ? { ...(f.tls?.ca ? { ca: f.tls.ca } : {}), ...(f.tls?.serverName ? { serverName: f.tls.serverName } : {}) } : undefined;
  return {
    name: f.name,
    redis: { ...f.redis, ...(tls ? { tls } : {}) },
    keyPrefix: f.keyPrefix,
    heartbeatMs: f.heartbeat,
    ttlMs: f.ttl,
    onRedisDown: f.onRedisDown,
    publicAddresses: f.publicAddresses.length > 0 ? f.publicAddresses : [listen.host.includes(':') ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`],
    limits: { maxPerSource: f.limits.maxPerSource, ratePerSource: f.limits.ratePerSource.sessions, rateWindowMs: f.limits.ratePerSource.per },
  };
}
