import type { Endpoint } from '../core/address.js';
import type { RouteConfig, RouteOrigin } from '../config/types.js';
import type { Admitter } from '../admission/admitter.js';
import type { Reverdictable } from '../admission/reverdict.js';
import type { EndReason, FlowCounters } from '../observe/events.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import type { ListenerConfig } from '../session/session-policy.js';

/**
 * What node-wide admission reads of a listener: its ACL (which also opts into CrowdSec). A config
 * route is one; a listener the config does not make a route (an agent's connect listener) gives
 * just this.
 */
export type AdmissionKeys = Pick<RouteConfig, 'acl'>;

/**
 * What a listener the node does not own (a gateway's public listener, an agent's connect
 * listener) needs from the node: admission (ACL + node-wide steps), flow ids and the datapath.
 */
export interface RouteDepsSource {
  (listener: AdmissionKeys): { readonly admit: Admitter | undefined; readonly nextFlowId: () => number; readonly datapath?: UdpDatapath; readonly streamDatapath?: StreamDatapath };
}

/** A live session or connection, as the admin API and `sluice status` show it. */
export interface SessionInfo extends FlowCounters {
  readonly id: number;
  readonly route: string;
  readonly proto: 'tcp' | 'udp';
  readonly client: Endpoint;
  readonly upstream: Endpoint | undefined;
  readonly state: string;
  readonly startedAt: number;
  /** Set for routes discovered from container labels. */
  readonly origin?: RouteOrigin;
  /** The port the client reached, on a route whose `listen` is a port range; absent otherwise. */
  readonly listenPort?: number;
}

/**
 * One route's listener with its sessions. Built by node.ts, which swaps settings on reload and
 * decides when it drains. `C`: what it was built from (a config route's RouteConfig, or a
 * listener's config that names its upstream).
 */
export interface RouteRuntime<C extends ListenerConfig = ListenerConfig> extends Reverdictable {
  readonly name: string;
  readonly config: C;
  /** The bound address (the real port when the config said 0). */
  readonly local: Endpoint;
  readonly active: number;
  /** New settings for the same `listen`: new sessions use them (docs/configuration.md lists what live ones pick up). */
  update(route: C, admit: Admitter | undefined): void;
  /** Stops admitting; resolves when the last session ends. The caller enforces a deadline with `close`. */
  drain(): Promise<void>;
  /** Ends every session with `reason` and releases the socket. Idempotent. */
  close(reason: EndReason): Promise<void>;
  sessions(): SessionInfo[];
}
