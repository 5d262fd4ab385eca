import { z } from 'zod';
import { canonicalIp, parseHostPort } from '../core/address.js';
import { parseCidr } from '../core/cidr.js';
import { expecting } from './issue-text.js';
import { duration, size } from './unit-schemas.js';

/**
 * Config keys of the recording side (issue 4): `metrics`, `flowLog`, `conntrack`, `admin`. Spread
 * into the top-level schema (schema.ts) and compiled by `compileObserve` (load.ts). Same rules as
 * the rest of the config: strict objects, every default here, problems with their key path.
 */
const uint32 = z.number().int().min(0).max(0xffffffff);

const cidrText = z.string().superRefine((text, ctx) => {
  const c = parseCidr(text);
  if (typeof c === 'string') ctx.addIssue({ code: 'custom', message: c });
});

const metrics = z.strictObject({ process: z.boolean().default(false) }).prefault({});

const flowLog = z
  .strictObject({
    output: z.string().min(1).default('off'),
    updateInterval: duration.prefault('60s'),
    maxBytes: size.prefault('100MiB'),
    maxFiles: z.number().int().min(0).max(1000).default(5),
  })
  .prefault({});

const conntrack = z
  .strictObject({
    enabled: z.boolean().default(false),
    localNetworks: z.array(cidrText).default([]),
    marks: z
      .strictObject({ ingress: uint32.optional(), egress: uint32.optional(), mask: uint32.default(0xffffffff) })
      .superRefine((m, ctx) => {
        if (m.ingress !== undefined && m.ingress === m.egress) ctx.addIssue({ code: 'custom', path: ['egress'], message: 'ingress and egress must differ' });
      })
      .optional(),
    unknownDirection: z.enum(['skip', 'ingress', 'egress']).default('skip'),
    accounting: z.boolean().default(true),
    timestamps: z.boolean().default(false),
    command: z.array(z.string().min(1)).min(1).default(['conntrack']),
    netlinkBufferBytes: z.number().int().min(0).max(1 << 30).default(4 * 1024 * 1024),
    maxTrackedFlows: z.number().int().min(0).max(10_000_000).default(65_536),
    backoff: z
      .strictObject({
        initial: duration.prefault('5s'),
        max: duration.prefault('5m'),
        multiplier: z.number().min(1).max(100).default(2),
        jitter: z.number().min(0).max(1).default(0.5),
        resetAfter: duration.prefault('1m'),
      })
      .superRefine((b, ctx) => {
        if (b.initial <= 0) ctx.addIssue({ code: 'custom', path: ['initial'], message: 'must be above 0' });
        if (b.max < b.initial) ctx.addIssue({ code: 'custom', path: ['max'], message: 'must be at least backoff.initial' });
      })
      .prefault({}),
  })
  .prefault({});

const adminListen = expecting(z.string(), 'IP:PORT such as 127.0.0.1:9090').transform((text, ctx) => {
  const hp = parseHostPort(text, true);
  const ip = typeof hp === 'string' ? undefined : canonicalIp(hp.host);
  if (typeof hp === 'string' || !ip) {
    ctx.addIssue({ code: 'custom', message: typeof hp === 'string' ? `expected IP:PORT such as 127.0.0.1:9090: ${hp}` : `the admin listen host must be an IP address, got "${hp.host}"` });
    return z.NEVER;
  }
  return { host: ip.address, port: hp.port, family: ip.family };
});

/** Tokens go in an HTTP header and a cookie: visible ASCII, long enough not to be guessed. */
const token = z
  .string()
  .min(16, 'must be at least 16 characters (use e.g. `openssl rand -hex 32`)')
  .max(512)
  .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII without spaces');

/** `admin.tls`: certificate and key files (PEM), or `gateway` for the gateway's own certificate. */
const adminTls = z.union([z.literal('gateway'), z.strictObject({ cert: z.string().min(1), key: z.string().min(1) })]);

const admin = z
  .strictObject({ listen: adminListen, token: token.optional(), tls: adminTls.optional(), allowPlaintext: z.boolean().default(false) })
  .superRefine((a, ctx) => {
    if (isLoopback(a.listen.host)) return;
    if (a.token === undefined) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: `is required when admin.listen is not a loopback address (${a.listen.host})` });
    }
    // A token and a cookie sent in clear over a network can be read by anyone on the path.
    if (a.tls === undefined && !a.allowPlaintext) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: `${a.listen.host} is not a loopback address: serve the admin listener over TLS (admin.tls: { cert, key } or admin.tls: gateway), or set admin.allowPlaintext: true`,
      });
    }
  })
  .optional();

/** The top-level keys, spread into configSchema. */
export const observeShape = { metrics, flowLog, conntrack, admin };

type Out<K extends keyof typeof observeShape> = z.output<(typeof observeShape)[K]>;
type ObserveRaw = { metrics: Out<'metrics'>; flowLog: Out<'flowLog'>; conntrack: Out<'conntrack'>; admin?: Out<'admin'> };

export interface MetricsConfig {
  /** Add prom-client's `process_*` and `nodejs_*` metrics to /metrics. */
  readonly process: boolean;
}

export interface FlowLogConfig {
  /** `off`, `stdout`, `stderr`, or a file path (rotated by size). */
  readonly output: string;
  /** Period of `update` records; 0 turns them off. */
  readonly updateIntervalMs: number;
  readonly maxBytes: number;
  readonly maxFiles: number;
}

export interface ConntrackConfig {
  readonly enabled: boolean;
  readonly localNetworks: readonly string[];
  readonly marks: { readonly ingress?: number; readonly egress?: number; readonly mask: number } | undefined;
  readonly unknownDirection: 'skip' | 'ingress' | 'egress';
  readonly accounting: boolean;
  readonly timestamps: boolean;
  readonly command: readonly string[];
  readonly netlinkBufferBytes: number;
  readonly maxTrackedFlows: number;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number; readonly multiplier: number; readonly jitter: number; readonly resetAfterMs: number };
}

export interface AdminConfig {
  /** Where the admin HTTP listener binds (an IP literal; port 0 picks one). */
  readonly listen: { readonly host: string; readonly port: number; readonly family: 4 | 6 };
  /** When set, every request must carry it (Bearer) or the dashboard cookie derived from it. */
  readonly token: string | undefined;
  /** HTTPS with these PEM files, or with the gateway's certificate; undefined: plain HTTP. */
  readonly tls: { readonly cert: string; readonly key: string } | 'gateway' | undefined;
}

export interface ObserveConfig {
  readonly metrics: MetricsConfig;
  readonly flowLog: FlowLogConfig;
  readonly conntrack: ConntrackConfig;
  /** Undefined: no admin listener (and no metrics registry). */
  readonly admin: AdminConfig | undefined;
}

export function compileObserve(data: ObserveRaw): ObserveConfig {
  const c = data.conntrack;
  return {
    metrics: { process: data.metrics.process },
    flowLog: { output: data.flowLog.output, updateIntervalMs: data.flowLog.updateInterval, maxBytes: data.flowLog.maxBytes, maxFiles: data.flowLog.maxFiles },
    conntrack: {
      enabled: c.enabled,
      localNetworks: c.localNetworks,
      marks: c.marks,
      unknownDirection: c.unknownDirection,
      accounting: c.accounting,
      timestamps: c.timestamps,
      command: c.command,
      netlinkBufferBytes: c.netlinkBufferBytes,
      maxTrackedFlows: c.maxTrackedFlows,
      backoff: { initialMs: c.backoff.initial, maxMs: c.backoff.max, multiplier: c.backoff.multiplier, jitter: c.backoff.jitter, resetAfterMs: c.backoff.resetAfter },
    },
    admin: data.admin && { listen: data.admin.listen, token: data.admin.token, tls: data.admin.tls },
  };
}

/** 127.0.0.0/8 and ::1: reachable only from this host. */
export function isLoopback(host: string): boolean {
  const ip = canonicalIp(host);
  if (!ip) return false;
  return ip.family === 4 ? ip.address.startsWith('127.') : ip.address === '::1';
}

/** Checks across sections: kernel flow records go to the flow log, so conntrack needs one. */
export function checkObserve(data: ObserveRaw & { gateway?: unknown }, at: (path: (string | number)[], message: string) => void): void {
  if (data.admin?.tls === 'gateway' && data.gateway === undefined) {
    at(['admin', 'tls'], 'is "gateway" but there is no gateway: section whose certificate it could use; give cert and key files instead');
  }
  if (data.conntrack.enabled && data.flowLog.output === 'off') {
    at(['conntrack', 'enabled'], 'kernel flow records are written to the flow log: set flowLog.output too');
  }
}
