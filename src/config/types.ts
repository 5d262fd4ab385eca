import type { RouteMatch } from './route-match.js';
import type { HostPort, ListenAddress } from '../core/address.js';
import type { AclSpec } from '../core/acl-spec.js';
import type { RouteOrigin } from '../core/route-origin.js';
import type { SourcePrefix } from '../core/source-prefix.js';
import type { CrowdsecSettings } from './crowdsec-settings.js';
import type { AgentConfig, GatewayConfig } from './expose-config.js';
import type { ObserveConfig } from './observe-schema.js';
import type { DockerConfig } from './docker-config.js';
import type { BansSettings } from './bans-settings.js';
import type { PoolSpec } from './pool-schema.js';
import type { SchedulerSettings } from './scheduler-schema.js';
import type { BandwidthSettings, ProxyProtocolSettings, TcpSettings, UdpSettings } from './route-settings.js';

export type { AclSpec, RouteOrigin, SourcePrefix };
export type { BandwidthLimit, BandwidthSettings, OnLimit, ProxyProtocolSettings, RateLimit, TcpSettings, UdpSettings } from './route-settings.js';

export interface RouteConfig {
  readonly name: string;
  readonly listen: ListenAddress;
  /** How many ports from `listen.port` on (`listen: ...:N-M`, docs/ranges.md); absent = one. */
  readonly ports?: number;
  /** The upstream; on a pooled route, its first member (for code that is not pool-aware). */
  readonly upstream: HostPort;
  /** Set when `upstream` is a list of members or the route has `balance`/`health` (docs/pools.md). */
  readonly pool?: PoolSpec;
  /** `upstream` is a range of `ports` ports: listen port p goes to upstream.port + (p - listen.port). */
  readonly upstreamRange?: boolean;
  /** Set on the route one port of a range runs (listen/range-route.ts): its flows carry the listen port. */
  readonly rangeMember?: boolean;
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
  /** The TCP congestion control of the native stream datapath's sockets (datapath/congestion.ts); read at start. Absent = auto. */
  readonly congestion?: string;
  /** The scheduler slice of every thread (docs/configuration.md, "scheduler"); read at start. Absent = the default. */
  readonly scheduler?: SchedulerSettings;
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
