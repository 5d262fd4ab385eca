import type { FleetHealth } from '../fleet/fleet.js';
import type { RouteRuntime } from '../listen/route.js';
import type { BanList, CrowdsecBans } from '../admin/bans-api.js';
import type { GatewayPeerSource } from './peer-view.js';
import type { PublishedSource } from './served-routes.js';
import type { PoolView } from '../upstream/pool/pool.js';
import type { AgentStatus } from './agent-status.js';

/**
 * What the ops layer reads of the data path, and nothing more. The composition root provides it
 * from the parts it built; every method answers "none" for a part not running (not started yet,
 * not configured, or already closed), so the ops layer never holds a concrete part.
 */
export interface DataPathStatus {
  /** The node's own routes right now. */
  routes(): readonly RouteRuntime[];
  /** A config route's pool (docs/pools.md); undefined for a route with one upstream. */
  pool?(route: string): PoolView | undefined;
  /** The gateway and agent of `gateway:` / `agent:`, where they run. */
  peers(): PeerStatus;
  /** Admission state shown by /api/bans and /api/sources. */
  admission(): AdmissionStatus;
  /** Sections of /api/health owned by other parts: the UDP and TCP datapaths, container discovery. */
  health(): HealthStatus;
  /** The body of /api/fleet, on a gateway in a fleet (docs/fleet.md); undefined otherwise. */
  fleet?(): Promise<unknown> | undefined;
}

export interface PeerStatus {
  readonly gateway?: GatewayPeerSource & PublishedSource;
  readonly agent?: AgentStatus;
}

export interface AdmissionStatus {
  /** The ban list behind /api/bans. */
  readonly bans?: BanList;
  /** CrowdSec's decisions, listed beside the ban list. */
  readonly crowdsecBans?: CrowdsecBans;
  /** The ban state of a source key for /api/sources; absent = `ban: null`. */
  readonly banState?: (source: string) => unknown;
}

export interface HealthStatus {
  /** Which UDP datapath moves datagrams: /api/health and `sluice_datapath_info`. */
  readonly datapath: 'js' | 'native';
  /** Which stream datapath carries TCP routes: /api/health and `sluice_datapath_info{proto="tcp"}`. Default js. */
  readonly streamDatapath?: 'js' | 'native';
  /** Who seals the records of sealed pairs and trunks (native stream datapath; RecordCipherInfo): /api/health. Absent on the js datapath. */
  readonly recordCipher?: 'ipsec-mb' | 'openssl';
  /**
   * The congestion control the stream engine sets on its sockets (`congestion`, datapath/congestion.ts):
   * `loopback` for those whose peer is on this host, `all` for every one. Absent when it sets none.
   */
  readonly congestion?: { readonly loopback?: string; readonly all?: string };
  /** Who seals and opens tunnel datagrams in the native UDP batch (DatagramCipherInfo): /api/health. Absent on the js datapath. */
  readonly datagramCipher?: 'ipsec-mb' | 'openssl';
  /** Container discovery's state, label routes and label problems (absent without `docker:`). */
  readonly containers?: unknown;
  /** The gateway's fleet link (absent without `gateway.fleet`). */
  readonly fleet?: FleetHealth;
}
