import { z } from 'zod';
import { canonicalIp, parseHostPort, type ListenAddress } from '../core/address.js';
import type { AclSpec } from '../core/acl-spec.js';
import type { SourcePrefix } from '../core/source-prefix.js';
import type { TcpSettings, UdpSettings } from './route-settings.js';
import type { AgentConfig, GatewayConfig } from './expose-config.js';
import { DEFAULT_REPLY_BUDGET, type ReplyBudget } from '../core/reply-budget.js';
import { expecting } from './issue-text.js';
import { agentBandwidthSchema, bandwidthSchema } from './bandwidth-schema.js';
import { datagramBudgetSchema } from './datagram-budget-schema.js';
import { agentPoolSchemas, checkExposePool, checkGroups, compileExposePool, compileGroups } from './agent-pool-schema.js';
import { checkExposeRanges, parseExposeLocal, parseExposeRemote, rangeSizesProblem } from './expose-remote.js';
import { checkNamesPorts, compileNames, namesSchemas } from './expose-names.js';
import { compileFleet, fleetSchema } from './fleet-schema.js';

/**
 * The `gateway:` and `agent:` sections (docs/expose.md). The keys the issue fixed are `listen`,
 * `agents.<name>.token`, `ports` (gateway) and `name`, `gateway`, `token`, `fingerprint`,
 * `expose.<name>.{local, remote, proxyProtocol}` (agent); everything else has a documented
 * default here. The route-level parts (udp, tcp, acl) are passed in by schema.ts so the two files
 * do not import each other.
 */

/** At least this many characters of token: 16 random hex characters are 64 bits. */
export const MIN_TOKEN_CHARS = 16;
const TUNNEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
const FINGERPRINT = /^sha256:((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})$/i;

/** `sha256:AB:CD:...` or `sha256:abcd...` -> 64 lowercase hex characters, or undefined. */
export function normaliseFingerprint(text: string): string | undefined {
  const m = FINGERPRINT.exec(text.trim());
  return m ? m[1]!.replace(/:/g, '').toLowerCase() : undefined;
}

/** `20000-20100`, `20001`, or a list of those -> sorted inclusive ranges; a string on error. */
export function parsePortRanges(input: string | number | readonly (string | number)[]): [number, number][] | string {
  const parts = Array.isArray(input) ? input : [input];
  const out: [number, number][] = [];
  for (const p of parts) {
    const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(String(p));
    if (!m) return `"${String(p)}" is not a port or a range like 20000-20100`;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535 || lo > hi) return `"${String(p)}" is not a range within 1-65535`;
    out.push([lo, hi]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Raw parsed route parts, as schema.ts's `udp` and `tcp` produce them. */
export interface RawUdp {
  idleTimeout: number; maxSessions: number; maxSessionsPerSource: number; rate: { perSecond: number; burst: number };
  ratePerSource: { perSecond: number; burst: number }; onLimit: 'reject' | 'evict-lru'; setupQueue: number; maxDatagramBytes: number;
  replyBudget?: 'off' | { ratio: number; window: number };
  isolateAbove?: number;
}
export interface RawTcp {
  connectTimeout: number; idleTimeout: number; maxConnections: number; maxConnectionsPerSource: number;
  rate: { perSecond: number; burst: number }; ratePerSource: { perSecond: number; burst: number };
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the inputs of schema.ts's parts are its business */
export interface RouteParts {
  readonly duration: z.ZodType<number, string>;
  readonly udp: z.ZodType<RawUdp, any>;
  readonly tcp: z.ZodType<RawTcp, any>;
  readonly acl: z.ZodType<AclSpec, any>;
  readonly listen: z.ZodType<ListenAddress, string>;
  readonly replyBudget: z.ZodType<RawUdp['replyBudget'], any>;
}

/** Builds the two schemas from the route parts of schema.ts. */
const PEER_PATHS = ['auto', 'direct', 'relay'] as const;
/** `reserved` (documentation, benchmarking and other special-purpose ranges) is opt-in for labs that use them as public space. */
const CANDIDATE_CLASSES = ['public', 'private', 'loopback', 'link-local', 'reserved'] as const;

export function exposeSchemas(parts: RouteParts) {
  const { duration, udp, tcp, acl, listen: listenUrl, replyBudget } = parts;
  const hostPort = (allowZero: boolean) =>
    expecting(z.string(), 'host:port such as 203.0.113.5:7000 or "[2001:db8::1]:7000"').transform((text, ctx) => {
      const r = parseHostPort(text, allowZero);
      if (typeof r === 'string') {
        ctx.addIssue({ code: 'custom', message: r });
        return z.NEVER;
      }
      return r;
    });
  /** STUN and TURN servers: the ICE code sends to them as given and never resolves a name. */
  const serverAddress = hostPort(false).superRefine((hp, ctx) => {
    if (!canonicalIp(hp.host)) ctx.addIssue({ code: 'custom', message: `"${hp.host}" is a name; write the server's IP address (STUN and TURN servers are not resolved)` });
  });
  const ports = expecting(z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))]), 'a port, a range such as 20000-20100, or a list of those').transform((v, ctx) => {
    const r = parsePortRanges(v);
    if (typeof r === 'string') {
      ctx.addIssue({ code: 'custom', message: r });
      return z.NEVER;
    }
    return r;
  });
  const names = namesSchemas(hostPort(true));
  const token = z.string().min(MIN_TOKEN_CHARS, `use a token of at least ${MIN_TOKEN_CHARS} characters (e.g. openssl rand -hex 24)`);
  const window = z.number().int().min(1024).max(0x7fff_ffff).default(256 * 1024);
  const count = (max: number) => z.number().int().min(1).max(max);
  const pools = agentPoolSchemas(duration);

  const gateway = z.strictObject({
    listen: hostPort(true),
    agents: expecting(z.record(z.string().regex(TUNNEL_NAME, 'agent names use letters, digits, _ . - (1-64, not starting with . or -)'), z.strictObject({ token, ports: ports.optional(), replyBudget, bandwidth: agentBandwidthSchema.optional(), names: names.policy.optional() })), 'a map of agent names, each with token:'),
    names: names.ports.optional(),
    ports,
    stateDir: z.string().min(1).default('sluice-state'),
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    keepaliveInterval: duration.prefault('15s'),
    handshakeTimeout: duration.prefault('10s'),
    maxHandshakes: count(100_000).default(256),
    maxHandshakesPerSource: count(100_000).default(16),
    authBackoff: z
      .strictObject({ after: count(1000).default(5), initial: duration.prefault('1s'), max: duration.prefault('60s') })
      .prefault({}),
    bans: z.array(z.string()).optional(),
    resumeGrace: duration.prefault('30s'),
    streamWindow: window,
    maxStreamsPerAgent: count(1_000_000).default(1024),
    maxServicesPerAgent: count(65_535).default(64),
    maxPeerFlowsPerAgent: count(1_000_000).default(1024),
    stun: z.boolean().default(true),
    services: z.strictObject({ udp, tcp, acl: acl.optional(), bandwidth: bandwidthSchema.optional() }).prefault({ udp: {}, tcp: {} }),
    datagramBudget: datagramBudgetSchema,
    fleet: fleetSchema(duration).optional(),
    groups: pools.groups,
  });

  const agentName = z.string().regex(TUNNEL_NAME, 'agent names use letters, digits, _ . - (1-64, not starting with . or -)');
  const serviceName = z.string().regex(TUNNEL_NAME, 'service names use letters, digits, _ . - (1-64)');
  const parsed = <T>(parse: (text: string) => T | string, what: string) =>
    expecting(z.string(), what).transform((text, ctx) => {
      const r = parse(text);
      if (typeof r === 'string') {
        ctx.addIssue({ code: 'custom', message: r });
        return z.NEVER;
      }
      return r;
    });
  const expose = z.strictObject({
    local: parsed(parseExposeLocal, 'host:port such as 127.0.0.1:8443, or a range such as 127.0.0.1:50000-50099'),
    remote: parsed(parseExposeRemote, 'tcp://host:port, udp://host:N-M, tls://name or quic://name').optional(),
    transport: z.enum(['udp', 'tcp']).optional(),
    peers: z.array(agentName).max(255).default([]),
    proxyProtocol: z.enum(['off', 'v1', 'v2']).default('off'),
    proxyProtocolUdp: z.enum(['every', 'first']).default('every'),
    udp,
    tcp: z.strictObject({ connectTimeout: duration.prefault('10s'), idleTimeout: duration.prefault('10m') }).prefault({}),
    ...pools.expose,
  });

  const pin = z.string().refine((s) => normaliseFingerprint(s) !== undefined, 'expected sha256: and 64 hex digits (colons allowed), as the gateway prints it');
  const agent = z.strictObject({
    name: z.string().regex(TUNNEL_NAME, 'agent names use letters, digits, _ . - (1-64, not starting with . or -)'),
    gateway: hostPort(false).optional(),
    // Several gateways (docs/fleet.md, "Agents on a fleet"); `gateway` or `gateways`, not both.
    gateways: z.array(hostPort(false)).min(1).max(64).optional(),
    homes: z.number().int().min(1).max(64).optional(),
    token,
    fingerprint: z.union([pin, z.array(pin).min(1).max(64)]).optional(),
    ca: z.string().min(1).optional(),
    serverName: z.string().min(1).optional(),
    expose: z.record(serviceName, expose).default({}),
    reconnect: z.strictObject({ initial: duration.prefault('500ms'), max: duration.prefault('30s') }).prefault({}),
    streamWindow: window,
    dataConnections: z.number().int().min(0).max(64).default(8),
    trunks: z.number().int().min(0).max(16).default(1),
    datagramBudget: datagramBudgetSchema,
    connect: z
      .record(
        z.string().min(1).max(64),
        z.strictObject({
          peer: agentName,
          service: serviceName,
          listen: listenUrl,
          path: z.enum(PEER_PATHS).default('auto'),
          udp,
          tcp,
        }),
      )
      .default({}),
    peerIdleTimeout: duration.prefault('15m'),
    directRetry: duration.prefault('30s'),
    stunServers: z.array(serverAddress).default([]),
    turnServers: z.array(z.strictObject({ server: serverAddress, username: z.string().min(1), password: z.string().min(1) })).default([]),
    peerCandidates: z.array(z.enum(CANDIDATE_CLASSES)).min(1).default(['public']),
    icePolicy: z.enum(['all', 'relay']).default('all'),
  });
  return { gateway, agent };
}

type Schemas = ReturnType<typeof exposeSchemas>;
export type RawGateway = z.output<Schemas['gateway']>;
export type RawAgent = z.output<Schemas['agent']>;

export function udpSettings(u: RawUdp, defaultBudget: ReplyBudget | undefined): UdpSettings {
  return {
    idleTimeoutMs: u.idleTimeout, maxSessions: u.maxSessions, maxSessionsPerSource: u.maxSessionsPerSource, rate: u.rate,
    ratePerSource: u.ratePerSource, onLimit: u.onLimit, setupQueue: u.setupQueue, maxDatagramBytes: u.maxDatagramBytes,
    replyBudget: replyBudgetOf(u.replyBudget, defaultBudget),
    isolateAbove: u.isolateAbove ?? DEFAULT_ISOLATE_ABOVE,
  };
}

/**
 * `udp.isolateAbove` where the gateway and the agent listen (the public side of exposures; docs/expose.md,
 * "A flooding client's own socket"): 10,000 datagrams/s, about 5 Mbit/s at 64 B and 110 Mbit/s at
 * 1400 B, far above a game client or a VoIP call, and below what one flooding client sends.
 */
export const DEFAULT_ISOLATE_ABOVE = 10_000;

/** `udp.replyBudget` as written (`off`, an object, or absent for the place's default). */
export function replyBudgetOf(raw: RawUdp['replyBudget'], defaultBudget: ReplyBudget | undefined): ReplyBudget | undefined {
  if (raw === undefined) return defaultBudget;
  return raw === 'off' ? undefined : { ratio: raw.ratio, windowMs: raw.window };
}

export function tcpSettings(t: RawTcp): TcpSettings {
  return {
    connectTimeoutMs: t.connectTimeout, idleTimeoutMs: t.idleTimeout, maxConnections: t.maxConnections,
    maxConnectionsPerSource: t.maxConnectionsPerSource, rate: t.rate, ratePerSource: t.ratePerSource,
  };
}

/** Cross-key checks a field schema cannot make; `at` reports with a path. */
export function checkExpose(
  data: { gateway?: RawGateway; agent?: RawAgent },
  at: (path: (string | number)[], message: string) => void,
): void {
  const g = data.gateway;
  if (g && !canonicalIp(g.listen.host)) at(['gateway', 'listen'], `listen host must be an IP address, got "${g.listen.host}"`);
  if (g && g.authBackoff.max < g.authBackoff.initial) at(['gateway', 'authBackoff', 'max'], 'must be at least authBackoff.initial');
  if (g) checkNamesPorts(g.names, g.listen, at);
  if (g) checkGroups(g.groups, new Set(Object.keys(g.agents)), at);
  const a = data.agent;
  if (!a) return;
  if (a.gateway !== undefined && a.gateways !== undefined) at(['agent', 'gateways'], 'give gateway (one gateway) or gateways (several), not both');
  if (a.gateway === undefined && a.gateways === undefined) at(['agent'], 'set gateway (host:port of the gateway) or gateways (a list of them)');
  if (a.homes !== undefined && a.gateways === undefined) at(['agent', 'homes'], 'needs gateways (a list of gateways to choose from)');
  if (a.fingerprint === undefined && a.ca === undefined) {
    at(['agent'], 'set fingerprint (printed by the gateway on first start) or ca (a CA file) to authenticate the gateway');
  }
  if (a.reconnect.max < a.reconnect.initial) at(['agent', 'reconnect', 'max'], 'must be at least reconnect.initial');
  const seen = new Map<string, string>();
  for (const [name, e] of Object.entries(a.expose)) {
    if (!e.remote && e.peers.length === 0) at(['agent', 'expose', name], 'set remote (a public port on the gateway), peers (agents that may connect), or both');
    if (e.remote && e.transport && e.transport !== e.remote.remote.transport) at(['agent', 'expose', name, 'transport'], `is ${e.transport} but remote is ${e.remote.remote.transport}://`);
    if (e.peers.includes(a.name)) at(['agent', 'expose', name, 'peers'], `"${a.name}" is this agent itself`);
    if (e.udp.replyBudget !== undefined) {
      at(['agent', 'expose', name, 'udp', 'replyBudget'], 'the public side of an exposure is budgeted on the gateway: set gateway.services.udp.replyBudget there');
    }
    const transport = e.remote?.remote.transport ?? e.transport ?? 'udp';
    if (e.proxyProtocol === 'v1' && transport === 'udp') at(['agent', 'expose', name, 'proxyProtocol'], 'v1 is TCP only; use v2 on a udp:// service');
    checkExposePool(e, (path, message) => at(['agent', 'expose', name, ...path], message));
    if (!e.remote) {
      if (e.local.ports !== undefined) at(['agent', 'expose', name, 'local'], 'a range of local ports needs a remote range of the same size');
      continue;
    }
    const sizes = rangeSizesProblem(e.local.ports, e.remote);
    if (sizes) at(['agent', 'expose', name, 'local'], sizes);
    if ((e.remote.ports !== undefined || e.local.ports !== undefined) && e.peers.length > 0) {
      at(['agent', 'expose', name, 'peers'], 'a port range is published on the gateway only; peers reach one port (expose a single port for them)');
    }
    if (e.remote.serverName !== undefined) {
      const key = `${e.remote.remote.transport}:${e.remote.serverName}`;
      const other = seen.get(key);
      if (other) at(['agent', 'expose', name, 'remote'], `${e.remote.serverName} is already claimed by "${other}" (${e.remote.remote.transport === 'tcp' ? 'tls' : 'quic'}://)`);
      else seen.set(key, name);
    }
  }
  checkExposeRanges(a.expose, at);
  if (a.icePolicy === 'relay' && a.turnServers.length === 0) at(['agent', 'icePolicy'], 'relay needs at least one entry in turnServers');
  for (const [name, c] of Object.entries(a.connect)) {
    if (c.peer === a.name) at(['agent', 'connect', name, 'peer'], `"${c.peer}" is this agent itself`);
  }
}

export function compileGateway(g: RawGateway, topAcl: AclSpec | undefined, topSourcePrefix?: SourcePrefix): GatewayConfig {
  const servicesUdp = udpSettings(g.services.udp, DEFAULT_REPLY_BUDGET);
  const agentUdp = (raw: RawUdp['replyBudget']) => (raw === undefined ? servicesUdp : { ...servicesUdp, replyBudget: replyBudgetOf(raw, undefined) });
  return {
    listen: g.listen,
    agents: new Map(Object.entries(g.agents).map(([name, a]) => [name, { token: a.token, ports: a.ports ?? g.ports, udp: agentUdp(a.replyBudget), ...(a.bandwidth ? { bandwidth: a.bandwidth } : {}), ...(a.names ? { names: a.names } : {}) }])),
    ports: g.ports,
    ...compileNames(g.names),
    stateDir: g.stateDir,
    tls: g.tls,
    keepaliveIntervalMs: g.keepaliveInterval,
    handshakeTimeoutMs: g.handshakeTimeout,
    maxHandshakes: g.maxHandshakes,
    maxHandshakesPerSource: g.maxHandshakesPerSource,
    authBackoff: { after: g.authBackoff.after, initialMs: g.authBackoff.initial, maxMs: g.authBackoff.max },
    ...(g.bans ? { bans: g.bans } : {}),
    resumeGraceMs: g.resumeGrace,
    streamWindow: g.streamWindow,
    maxStreamsPerAgent: g.maxStreamsPerAgent,
    maxServicesPerAgent: g.maxServicesPerAgent,
    maxPeerFlowsPerAgent: g.maxPeerFlowsPerAgent,
    stun: g.stun,
    datagramBudget: g.datagramBudget,
    ...(g.fleet ? { fleet: compileFleet(g.fleet, g.listen) } : {}),
    groups: compileGroups(g.groups),
    services: {
      udp: servicesUdp,
      tcp: tcpSettings(g.services.tcp),
      acl: g.services.acl ?? topAcl,
      ...(topSourcePrefix ? { sourcePrefix: topSourcePrefix } : {}),
      ...(g.services.bandwidth ? { bandwidth: g.services.bandwidth } : {}),
    },
  };
}

/** `fingerprint:` as one pin, or a list of pins (`fingerprints`, the first also as `fingerprint`). */
function pins(raw: string | string[] | undefined): Pick<AgentConfig, 'fingerprint' | 'fingerprints'> {
  if (raw === undefined) return { fingerprint: undefined };
  if (typeof raw === 'string') return { fingerprint: normaliseFingerprint(raw) };
  const all = [...new Set(raw.map((p) => normaliseFingerprint(p)!))];
  return { fingerprint: all[0], ...(all.length > 1 ? { fingerprints: all } : {}) };
}

export function compileAgent(a: RawAgent): AgentConfig {
  return {
    name: a.name,
    gateway: a.gateway ?? a.gateways![0]!,
    ...(a.gateways ? { gateways: a.gateways } : {}),
    ...(a.homes !== undefined ? { homes: a.homes } : {}),
    token: a.token,
    ...pins(a.fingerprint),
    ca: a.ca,
    serverName: a.serverName,
    expose: Object.entries(a.expose).map(([name, e]) => ({
      name,
      local: e.local.local,
      remote: e.remote?.remote,
      ...(e.remote?.ports !== undefined ? { remotePorts: e.remote.ports, localRange: e.local.ports !== undefined } : {}),
      ...(e.remote?.serverName !== undefined ? { serverName: e.remote.serverName } : {}),
      transport: e.remote?.remote.transport ?? e.transport ?? 'udp',
      peers: e.peers,
      proxyProtocol: e.proxyProtocol,
      proxyProtocolUdp: e.proxyProtocolUdp,
      // The public side of an exposure is budgeted on the gateway; the agent answers only the gateway or an authenticated peer.
      udp: udpSettings(e.udp, undefined),
      connectTimeoutMs: e.tcp.connectTimeout,
      idleTimeoutMs: e.tcp.idleTimeout,
      ...compileExposePool(e),
    })),
    reconnect: { initialMs: a.reconnect.initial, maxMs: a.reconnect.max },
    streamWindow: a.streamWindow,
    dataConnections: a.dataConnections,
    trunks: a.trunks,
    connect: Object.entries(a.connect).map(([name, c]) => ({
      name, peer: c.peer, service: c.service, listen: c.listen, path: c.path, udp: udpSettings(c.udp, DEFAULT_REPLY_BUDGET), tcp: tcpSettings(c.tcp),
    })),
    peerIdleTimeoutMs: a.peerIdleTimeout,
    directRetryMs: a.directRetry,
    stunServers: a.stunServers,
    turnServers: a.turnServers,
    peerCandidates: a.peerCandidates,
    icePolicy: a.icePolicy,
    datagramBudget: a.datagramBudget,
  };
}
