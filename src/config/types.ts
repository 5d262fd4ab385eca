import type { RouteMatch } from './route-match.js';
import type { HostPort, ListenAddress } from '../core/address.js';
import type { AclSpec } from '../admission/acl/acl-policy.js';
import type { CrowdsecSettings } from '../admission/crowdsec/settings.js';
import type { AgentConfig, GatewayConfig } from './gateway-schema.js';
import type { ObserveConfig } from './observe-schema.js';
import type { DockerConfig } from '../discovery/docker-config.js';
import type { ReplyBudget } from '../core/reply-budget.js';
import type { SourcePrefix } from '../admission/source-key.js';
import type { BansSettings } from '../admission/bans/settings.js';

/** A token bucket: `perSecond` refill, `burst` capacity. `perSecond: 0` turns the limit off. */
export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/**
 * Byte-rate limits of one direction pair: `up` is client to upstream, `down` upstream to client;
 * `perSecond` in bytes, `burst` in bytes. An absent direction is unlimited.
 */
export interface BandwidthLimit {
  readonly up?: RateLimit;
  readonly down?: RateLimit;
}

/** `bandwidth:` of a route (admission/bandwidth-limiter.ts, docs/bans.md "Bandwidth limits"). */
export interface BandwidthSettings {
  readonly perSource?: BandwidthLimit;
  readonly perRoute?: BandwidthLimit;
  /** `gateway.agents.<name>.bandwidth.perAgent` only: one bucket pair over all of the agent's services. */
  readonly perAgent?: BandwidthLimit;
}

export type OnLimit = 'reject' | 'evict-lru';

export interface UdpSettings {
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly maxSessionsPerSource: number;
  readonly rate: RateLimit;
  readonly ratePerSource: RateLimit;
  readonly onLimit: OnLimit;
  /** Datagrams held per session while its upstream socket is being set up. */
  readonly setupQueue: number;
  /** Largest datagram payload forwarded; larger ones are dropped and counted. */
  readonly maxDatagramBytes: number;
  /** Replies per session at most `ratio` x bytes received over the window (core/reply-budget.ts); absent: off. */
  readonly replyBudget?: ReplyBudget;
}

export interface TcpSettings {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerSource: number;
  readonly rate: RateLimit;
  readonly ratePerSource: RateLimit;
}

/** PROXY protocol for one route (docs/proxy-protocol.md). */
export interface ProxyProtocolSettings {
  /** Senders whose headers are trusted (CIDR texts); empty = never parse a header. */
  readonly accept: readonly string[];
  /** Header sent to the upstream; v1 is TCP only. */
  readonly send: 'v1' | 'v2' | undefined;
  /** How a UDP session sends v2: on every datagram, or on the first ones (until the upstream answers). */
  readonly udp: 'every' | 'first';
  readonly headerTimeoutMs: number;
  /**
   * TCP, untrusted senders on a route with `accept`: how long to wait for the first bytes before
   * dialing, so a PROXY header from them is refused before any upstream connection (0 = dial at
   * once and check the first bytes after). Absent = 50 ms.
   */
  readonly untrustedWaitMs?: number;
  readonly maxHeaderBytes: number;
}

export interface RouteConfig {
  readonly name: string;
  readonly listen: ListenAddress;
  readonly upstream: HostPort;
  readonly udp: UdpSettings;
  readonly tcp: TcpSettings;
  /** The route's own `acl`, else the top-level one, else undefined (everyone). */
  readonly acl: AclSpec | undefined;
  readonly proxyProtocol: ProxyProtocolSettings | undefined;
  /** What one source is for per-source caps and rates (`sourcePrefix`); absent = IPv4 /32, IPv6 /64. */
  readonly sourcePrefix?: SourcePrefix;
  /** Byte-rate limits (`bandwidth`); absent = unlimited, and the datapath does no bandwidth work. */
  readonly bandwidth?: BandwidthSettings;
  /** Absent for the config file's routes; set on routes discovered elsewhere (container labels). */
  readonly origin?: RouteOrigin;
  /** Names of the ban rules watching this route (its `bans`, else `bans.default`); absent = none. */
  readonly bans?: readonly string[];
  /** Picks this route by TLS server name on a shared `listen` (docs/sni.md); absent = not by name (the default route there). */
  readonly match?: RouteMatch;
}

/** Where a discovered route came from (src/discovery/, docs/containers.md). */
export interface RouteOrigin {
  readonly kind: 'container';
  /** Container name, without Docker's leading slash. */
  readonly container: string;
  readonly containerId: string;
  /** Which labels declared it: Sluice's `sluice.routes.*` or GoDoxy's `proxy.*`. */
  readonly labels: 'sluice' | 'godoxy';
}

export interface AccessLogConfig {
  /** `stdout`, `stderr`, a file path, or `off`. */
  readonly output: string;
}

/** `metrics`, `flowLog`, `conntrack`, `admin` (observe-schema.ts, docs/admin.md). */
export interface SluiceConfig extends ObserveConfig {
  readonly routes: readonly RouteConfig[];
  readonly geoip: { readonly database: string } | undefined;
  /** The CrowdSec Local API for routes whose acl says `crowdsec: true` (docs/crowdsec.md); absent = none. */
  readonly crowdsec?: CrowdsecSettings;
  /** Ban rules, allowlist and state directory (docs/bans.md); absent = no rules, API bans kept in memory only. */
  readonly bans?: BansSettings;
  readonly accessLog: AccessLogConfig;
  readonly log: { readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  readonly lifecycle: { readonly drainTimeoutMs: number; readonly watch: boolean };
  /** The UDP datapath (docs/datapath.md); read at start, a reload does not switch it. Absent = auto. */
  readonly datapath?: 'auto' | 'native' | 'js';
  /** The agent endpoint and public listeners of exposed services (docs/expose.md); absent = no gateway. */
  readonly gateway?: GatewayConfig;
  /** Publishes local services through a gateway (docs/expose.md); absent = no agent. */
  readonly agent?: AgentConfig;
  /** Routes from container labels (docs/containers.md); absent = no discovery. */
  readonly docker?: DockerConfig;
  /** The top-level `acl`, kept for routes that do not come from the file (they inherit it too). */
  readonly acl?: AclSpec;
  /** The top-level `sourcePrefix`, inherited by routes that do not set their own (label routes too). */
  readonly sourcePrefix?: SourcePrefix;
}

/** One problem found in a config: the dotted key path, its line when known, and what is wrong. */
export interface ConfigIssue {
  readonly path: string;
  readonly line?: number;
  readonly message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.path === '' ? '(top level)' : issue.path;
  return issue.line !== undefined ? `${where} (line ${issue.line}): ${issue.message}` : `${where}: ${issue.message}`;
}
