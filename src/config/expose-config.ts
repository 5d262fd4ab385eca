import type { FleetSettings } from './fleet-settings.js';
import type { HostPort, ListenAddress } from '../core/address.js';
import type { AclSpec } from '../core/acl-spec.js';
import type { SourcePrefix } from '../core/source-prefix.js';
import type { BandwidthSettings, TcpSettings, UdpSettings } from './route-settings.js';
import type { DatagramBudgetSettings } from './datagram-budget-schema.js';
import type { AgentGroup, ExposePoolSettings } from './agent-pool-schema.js';

/* The compiled `gateway:` and `agent:` sections (docs/expose.md); gateway-schema.ts builds them. */

export interface AgentCredentials {
  readonly token: string;
  /** Public ports this agent may ask for; the gateway's `ports` when not given. */
  readonly ports: readonly (readonly [number, number])[];
  /** UDP settings of this agent's public listeners: `services.udp` with the agent's own `replyBudget`, if set. */
  readonly udp?: UdpSettings;
  /** `agents.<name>.bandwidth`: its `perSource` / `perRoute` replace those of `services.bandwidth` for this agent's services; `perAgent` is shared by all of them. */
  readonly bandwidth?: BandwidthSettings;
  /** `agents.<name>.names`: names (and `*.` wildcards) this agent may claim with tls:// or quic://; absent = none. */
  readonly names?: readonly string[];
}

/** `gateway.names`: the shared ports where exposures by name are served (docs/sni.md). */
export interface GatewayNames {
  /** TCP: TLS routed by the ClientHello's server name. */
  readonly tls?: ListenAddress;
  /** UDP: QUIC routed by the server name in the client's Initial packets. */
  readonly quic?: ListenAddress;
}

/** Route settings for every public listener of an exposed service. */
export interface ExposedRouteSettings {
  readonly udp: UdpSettings;
  readonly tcp: TcpSettings;
  readonly acl: AclSpec | undefined;
  /** The top-level `sourcePrefix`; absent = IPv4 /32, IPv6 /64. */
  readonly sourcePrefix?: SourcePrefix;
  /** `services.bandwidth`: limits of every exposed service's public listener; the agent cannot change them. */
  readonly bandwidth?: BandwidthSettings;
}

export interface GatewayConfig {
  /** TLS over TCP, and tunnel datagrams + STUN over UDP, on the same port number. */
  readonly listen: HostPort;
  readonly agents: ReadonlyMap<string, AgentCredentials>;
  readonly ports: readonly (readonly [number, number])[];
  /** Shared ports for exposures by name; absent = tls:// and quic:// are refused. */
  readonly names?: GatewayNames;
  /** Where a generated certificate and key are kept. */
  readonly stateDir: string;
  /** A certificate of your own (CA-signed); when absent one is generated in `stateDir`. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  readonly keepaliveIntervalMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxHandshakes: number;
  readonly maxHandshakesPerSource: number;
  readonly authBackoff: { readonly after: number; readonly initialMs: number; readonly maxMs: number };
  /** Names of `bans.rules` that count failed authentications on the agent endpoint; absent = `bans.default`. */
  readonly bans?: readonly string[];
  readonly resumeGraceMs: number;
  readonly streamWindow: number;
  readonly maxStreamsPerAgent: number;
  readonly maxServicesPerAgent: number;
  /** Relayed peer flows (PEER_OPEN, UDP and TCP) one agent may have open at once. */
  readonly maxPeerFlowsPerAgent: number;
  readonly stun: boolean;
  readonly services: ExposedRouteSettings;
  /** Datagrams per second toward each agent, shared fairly among its sessions; 0 = off. */
  readonly datagramBudget: DatagramBudgetSettings;
  /** Membership of a fleet of gateways sharing state through Redis (docs/fleet.md); absent = no fleet. */
  readonly fleet?: FleetSettings;
  /** `groups.<name>`: agent pools, who may join them and with which key (docs/pools.md). */
  readonly groups: ReadonlyMap<string, AgentGroup>;
}

export interface ExposeConfig {
  readonly name: string;
  readonly local: HostPort;
  /** The public listener on the gateway; undefined when the service is offered to peers only. */
  readonly remote: ListenAddress | undefined;
  /** A port range on the gateway: `remote.port` and the next `remotePorts - 1` (docs/ranges.md); absent = one port. */
  readonly remotePorts?: number;
  /** With `remotePorts`: public port p goes to `local.port + (p - remote.port)`; false = every port to `local.port`. */
  readonly localRange?: boolean;
  /** Published by name on the gateway's shared TLS (tcp) or QUIC (udp) port (docs/sni.md); `remote` is then port 0. */
  readonly serverName?: string;
  readonly transport: 'tcp' | 'udp';
  /** Agents that may reach this service over a peer path (docs/connect.md). */
  readonly peers: readonly string[];
  readonly proxyProtocol: 'off' | 'v1' | 'v2';
  /** The agent's session rules toward the local service (idle timeout, caps, PROXY v2 on UDP). */
  readonly udp: UdpSettings;
  readonly proxyProtocolUdp: 'every' | 'first';
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** `group`, `groupKey`, `health`: this service is one member of an agent pool on the gateway. */
  readonly pool?: ExposePoolSettings;
}

/** `agent.connect.<name>`: a local listener that reaches another agent's service (docs/connect.md). */
export interface ConnectConfig {
  readonly name: string;
  readonly peer: string;
  readonly service: string;
  readonly listen: ListenAddress;
  /** auto: relay at once, direct when ICE finds a path; direct / relay pin one. */
  readonly path: 'auto' | 'direct' | 'relay';
  readonly udp: UdpSettings;
  readonly tcp: TcpSettings;
}

/** Address classes a peer's ICE candidates may be in (src/udpexposer/peer-policy.ts classes). */
export type CandidateClass = 'public' | 'private' | 'loopback' | 'link-local' | 'reserved';

export interface TurnServerEntry {
  readonly server: HostPort;
  readonly username: string;
  readonly password: string;
}

export interface AgentConfig {
  readonly name: string;
  /** The gateway (with `gateways:`, the first of them). */
  readonly gateway: HostPort;
  /** `agent.gateways`: every gateway to be homed on (docs/fleet.md, "Agents on a fleet"); absent with `gateway:`. */
  readonly gateways?: readonly HostPort[];
  /** `agent.homes`: how many gateways to hold at once; absent = all. */
  readonly homes?: number;
  readonly token: string;
  /** 64 lowercase hex characters of the gateway certificate's SHA-256, or undefined with `ca`. */
  readonly fingerprint: string | undefined;
  /** Every accepted pin when `fingerprint` is a list (one per gateway of a fleet); absent with one. */
  readonly fingerprints?: readonly string[];
  readonly ca: string | undefined;
  readonly serverName: string | undefined;
  readonly expose: readonly ExposeConfig[];
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  readonly streamWindow: number;
  /** `agent.dataConnections`: sealed data connections per gateway for TCP streams, idle and carrying a stream together (they are reused); 0 = streams ride the control connection. */
  readonly dataConnections: number;
  /** `agent.trunks`: sealed trunk connections per gateway, each carrying many TCP streams in the native engine; 0 = none (docs/expose.md, "Trunks"). */
  readonly trunks: number;
  readonly connect: readonly ConnectConfig[];
  /** A peer path with no traffic this long is torn down; its listeners go back to idle. */
  readonly peerIdleTimeoutMs: number;
  /** While relayed, ICE is tried again this often. */
  readonly directRetryMs: number;
  /** Extra STUN servers; the gateway's own STUN answer is always used. */
  readonly stunServers: readonly HostPort[];
  readonly turnServers: readonly TurnServerEntry[];
  /** Classes of peer candidate addresses this agent may send checks to; `public` by default. */
  readonly peerCandidates: readonly CandidateClass[];
  /** `relay`: ICE gathers and pairs TURN candidates only (WebRTC's iceTransportPolicy): the peer never learns this host's addresses. */
  readonly icePolicy: 'all' | 'relay';
  /** Datagrams per second toward the gateway and peers, shared fairly among the exposed sessions; 0 = off. */
  readonly datagramBudget: DatagramBudgetSettings;
}
