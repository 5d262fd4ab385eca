/**
 * `gateway.fleet`, compiled (docs/fleet.md): how a gateway joins a fleet of gateways that share
 * membership, agent presence, fleet-wide limits and bans through one Redis (or Valkey). Absent =
 * no fleet: the gateway keeps everything in its own memory and never opens a Redis connection.
 */
export interface FleetSettings {
  /** This gateway's name, unique in the fleet. */
  readonly name: string;
  /** Where Redis is: a single server or a Sentinel-watched master (redis-url.ts parses the text). */
  readonly redis: FleetRedisTarget;
  /** Prepended to every key and channel Sluice uses, so several fleets (or apps) can share one Redis. */
  readonly keyPrefix: string;
  /** Milliseconds between two registrations of this gateway (and refreshes of its agents' presence). */
  readonly heartbeatMs: number;
  /** How long a registration lives without a heartbeat: a gateway silent this long is not alive. */
  readonly ttlMs: number;
  /** Fleet-wide limits while Redis is unreachable: `local` = each gateway alone, `deny` = refuse new sessions. */
  readonly onRedisDown: 'local' | 'deny';
  /** Addresses clients and agents use to reach this gateway, as `host:port` texts (shown in the fleet view). */
  readonly publicAddresses: readonly string[];
  /** Per-source limits held across the whole fleet (0 = off). */
  readonly limits: FleetLimitSettings;
}

export interface FleetLimitSettings {
  /** Sessions and connections one source may have open on all gateways together; 0 = no fleet cap. */
  readonly maxPerSource: number;
  /** New sessions one source may open on all gateways together per `rateWindowMs`; 0 = no fleet rate. */
  readonly ratePerSource: number;
  readonly rateWindowMs: number;
}

/** A Redis server or a Sentinel group, with credentials and TLS. */
export interface FleetRedisTarget {
  /** The URL as written, with any password replaced by `***` (for views and logs). */
  readonly shown: string;
  /** `host:port` pairs: the server, or the Sentinels to ask for the master. */
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  /** The Sentinel master name; undefined for a single server. */
  readonly sentinelMaster?: string;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  /** TLS towards Redis (`rediss://`, `rediss+sentinel://`); undefined = plain TCP. */
  readonly tls?: { readonly ca?: string; readonly serverName?: string };
}
