import type { Endpoint } from '../../core/address.js';

/**
 * The control messages of the tunnel, as values. The wire layouts are in control-codec.ts and
 * docs/tunnel-protocol.md. Buffers in decoded messages are views into the decoder's input: copy
 * them if you keep them longer than that input.
 */

/**
 * Stable codes carried by AUTH_ERROR, PUBLISH_ERROR, SIGNAL_ERROR and GOAWAY. Both ends log and
 * count them by this name; the text message beside them is for people only.
 */
export type RefusalCode =
  | 'unknown-agent'
  | 'wrong-token'
  | 'unsupported-version'
  | 'rate-limited'
  | 'port-outside-range'
  | 'port-in-use'
  | 'duplicate-service'
  | 'too-many-services'
  | 'not-allowed'
  | 'invalid-request'
  | 'unknown-peer'
  | 'peer-offline'
  | 'superseded'
  | 'shutting-down'
  | 'protocol-error'
  | 'keepalive-timeout'
  | 'internal'
  | 'name-in-use';

/** Wire values of RefusalCode, in order from 1. Append only: a value never changes meaning. */
export const REFUSAL_CODES: readonly RefusalCode[] = [
  'unknown-agent', 'wrong-token', 'unsupported-version', 'rate-limited', 'port-outside-range', 'port-in-use',
  'duplicate-service', 'too-many-services', 'not-allowed', 'invalid-request', 'unknown-peer', 'peer-offline',
  'superseded', 'shutting-down', 'protocol-error', 'keepalive-timeout', 'internal', 'name-in-use',
];

/** Why a stream was reset. */
export type StreamResetCode =
  | 'refused'
  | 'dial-failed'
  | 'timeout'
  | 'cancel'
  | 'flow-control'
  | 'protocol'
  | 'unknown-service'
  | 'limit'
  | 'internal';

export const STREAM_RESET_CODES: readonly StreamResetCode[] = [
  'refused', 'dial-failed', 'timeout', 'cancel', 'flow-control', 'protocol', 'unknown-service', 'limit', 'internal',
];

export type ServiceTransport = 'tcp' | 'udp';
export const SERVICE_TRANSPORTS: readonly ServiceTransport[] = ['tcp', 'udp'];
export type ProxyProtocolMode = 'off' | 'v1' | 'v2';
export const PROXY_PROTOCOL_MODES: readonly ProxyProtocolMode[] = ['off', 'v1', 'v2'];

/** Who a datagram came from, sent with the first datagrams of each connectee tag. */
export interface DatagramOrigin {
  /** The agent's id for the service (from PUBLISH). */
  readonly serviceId: number;
  /** The public client (connectee) as the gateway saw it. */
  readonly client: Endpoint;
  /** For a service published with a port range: the public port the client sent to (FLAG_ORIGIN_PORT). */
  readonly port?: number;
}

// ---- handshake (the only messages accepted before authentication) ----

/** Agent → gateway, first message. */
export interface Hello {
  readonly type: 'hello';
  readonly version: number;
  /** Agent name, the key of the gateway's `agents` table. */
  readonly name: string;
  /** The key id the gateway must put in datagrams to this agent (chosen by the agent, u32). */
  readonly datagramKeyId: number;
  /** The gateway's datagram key id from the agent's previous session, to keep its UDP connectees; 0 for none. */
  readonly resumeKeyId: number;
  /** The agent's initial receive window for each stream, in bytes (1 to 2^31-1). */
  readonly streamWindow: number;
}

/** Gateway → agent: a fresh random nonce. */
export interface Challenge {
  readonly type: 'challenge';
  /** 32 bytes. */
  readonly nonce: Buffer;
}

/** Agent → gateway: HMAC-SHA256 answer to the challenge (auth.ts). */
export interface Auth {
  readonly type: 'auth';
  /** 32 bytes. */
  readonly digest: Buffer;
}

/** Gateway → agent: authenticated. */
export interface AuthOk {
  readonly type: 'auth-ok';
  /** The key id the agent must put in datagrams to the gateway (chosen by the gateway, u32). */
  readonly datagramKeyId: number;
  /** The gateway kept the agent's UDP connectee tags from the session named by `resumeKeyId`. */
  readonly resumed: boolean;
  /** The gateway's initial receive window for each stream, in bytes. */
  readonly streamWindow: number;
  /** How often the agent should send PING and datagram keepalives, in milliseconds. */
  readonly keepaliveIntervalMs: number;
  /** 32 bytes: proves the gateway also holds the agent's token (auth.ts). */
  readonly proof: Buffer;
}

export interface AuthError {
  readonly type: 'auth-error';
  readonly code: RefusalCode;
  readonly message: string;
}

/** Either side, before closing the connection on purpose. */
export interface Goaway {
  readonly type: 'goaway';
  readonly code: RefusalCode;
  readonly message: string;
}

// ---- services ----

/** Agent → gateway: open a public listener for a local service. */
export interface Publish {
  readonly type: 'publish';
  /** Chosen by the agent, unique within its session; used in STREAM_OPEN and datagram origins. */
  readonly serviceId: number;
  readonly name: string;
  readonly transport: ServiceTransport;
  /** Where the gateway should listen; port 0 asks for any free port of the gateway's range. */
  readonly remote: Endpoint;
  /** What the agent will write to the local service; the gateway only records it. */
  readonly proxyProtocol: ProxyProtocolMode;
  /** A port range: `remote.port` and the next `ports - 1` ports (2 to MAX_PUBLISH_PORTS); absent = one port. */
  readonly ports?: number;
  /**
   * Published by name on the gateway's shared port (TLS for tcp, QUIC for udp) instead of a port of
   * its own: a lowercase host name or `*.` wildcard; `remote` is then the unspecified address, port 0.
   */
  readonly serverName?: string;
  /** Joins the agent pool `group` on this remote (docs/pools.md, "Agent pools"); absent for a service of its own. */
  readonly pool?: PublishPool;
}

/** The pool part of a PUBLISH: which group, the proof of its key, and whether the agent checks the service. */
export interface PublishPool {
  readonly group: string;
  /** 32 bytes: HMAC-SHA256 of the group key over this TLS connection's binding (group-proof.ts). */
  readonly proof: Buffer;
  /** The agent checks the local service and sends SERVICE_HEALTH: the member starts down until it reports up. */
  readonly healthReported: boolean;
}

export interface PublishOk {
  readonly type: 'publish-ok';
  readonly serviceId: number;
  /** The address and port the gateway actually listens on. */
  readonly bound: Endpoint;
}

export interface PublishError {
  readonly type: 'publish-error';
  readonly serviceId: number;
  readonly code: RefusalCode;
  readonly message: string;
}

/** Agent → gateway: close a published service (config reload). Its streams are reset. */
export interface Unpublish {
  readonly type: 'unpublish';
  readonly serviceId: number;
}

/**
 * Agent → gateway: the agent's latest check of a published service's local service (its `health`
 * block) says up or down. Rides the authenticated control connection, so it is neither forged nor
 * replayed; only the newest report counts.
 */
export interface ServiceHealth {
  readonly type: 'service-health';
  readonly serviceId: number;
  readonly up: boolean;
  /** Why (the last check's result), for people: `connect refused`, `no reply within 1000ms`. */
  readonly message: string;
}

// ---- TCP streams ----

/** Gateway → agent: a public client connected. The agent dials the service, then accepts or resets. */
export interface StreamOpen {
  readonly type: 'stream-open';
  /** u32, not 0; even when the gateway opens, odd when the agent opens. */
  readonly streamId: number;
  readonly serviceId: number;
  readonly client: Endpoint;
  /** The public address the client connected to (PROXY header destination). */
  readonly server: Endpoint;
  /**
   * Gateway -> agent only: the stream's bytes travel on the agent's data connection with this
   * counter, not in STREAM_DATA (docs/tunnel-protocol.md, "Data connections").
   */
  readonly dataConnection?: number;
}

/** The receiver of STREAM_OPEN reached the local service. */
export interface StreamAccept {
  readonly type: 'stream-accept';
  readonly streamId: number;
}

export interface StreamData {
  readonly type: 'stream-data';
  readonly streamId: number;
  /** 1 to MAX_STREAM_DATA_BYTES; counts against the receiver's window. */
  readonly data: Buffer;
}

/** Half-close: the sender will send no more data on this stream (a FIN). */
export interface StreamEnd {
  readonly type: 'stream-end';
  readonly streamId: number;
}

/** Abort in both directions; the stream id is dead afterwards. */
export interface StreamReset {
  readonly type: 'stream-reset';
  readonly streamId: number;
  readonly code: StreamResetCode;
}

/** The receiver consumed `increment` more bytes of this stream; the sender may send that much more. */
export interface WindowUpdate {
  readonly type: 'window-update';
  readonly streamId: number;
  /** 1 to 2^31-1. */
  readonly increment: number;
}

// ---- datagrams over the control connection (UDP to the gateway blocked) ----

export interface DatagramFrame {
  readonly type: 'datagram';
  /** Connectee tag, u32, not 0. */
  readonly tag: number;
  readonly origin: DatagramOrigin | undefined;
  readonly payload: Buffer;
}

/** The sender dropped its session for this tag (idle expiry, or a tag it does not know). */
export interface DatagramClose {
  readonly type: 'datagram-close';
  readonly tag: number;
}

// ---- liveness ----

export interface Ping {
  readonly type: 'ping';
  /** u32, echoed by PONG. */
  readonly counter: number;
}

export interface Pong {
  readonly type: 'pong';
  readonly counter: number;
}

// ---- peers: agents reaching other agents' services (docs/connect.md) ----

/**
 * Agent → gateway: the agents in `peers` may reach the service `name` (whether or not it is also
 * published on a public port). Sent once per service after each AUTH_OK; a later OFFER of the same
 * service id replaces the list. The gateway forwards SIGNAL and PEER_OPEN only between an agent
 * and the agents its offers name, and between those agents and it.
 */
export interface Offer {
  readonly type: 'offer';
  readonly serviceId: number;
  readonly name: string;
  readonly transport: ServiceTransport;
  /** 0 to 255 agent names. */
  readonly peers: readonly string[];
}

/**
 * Agent → gateway: open a relayed flow to `service` of agent `peer`.
 * UDP: `tag` is chosen by the opener, with the top bit set (PEER_TAG_BIT), unique in its session;
 * datagrams of the flow carry it both ways. The opener may send DATAGRAM frames on it at once
 * (they follow PEER_OPEN in order) and sealed UDP datagrams after PEER_OPEN_OK.
 * TCP: `tag` is the odd stream id of the STREAM_OPEN that follows; the gateway answers that
 * stream with STREAM_ACCEPT once the peer accepted, or STREAM_RESET.
 */
export interface PeerOpen {
  readonly type: 'peer-open';
  readonly tag: number;
  readonly transport: ServiceTransport;
  readonly peer: string;
  readonly service: string;
}

/**
 * Gateway → agent: the UDP flow `tag` is set up; sealed UDP datagrams on it are forwarded now.
 * `peerTag` is the connectee tag the peer agent sees this flow under (PEER_FLOW told it). The
 * opener puts `peerTag` in the flow's datagrams when it sends them on a direct path, so the peer's
 * local session is the same whichever path a datagram took.
 * For a TCP PEER_OPEN no PEER_OPEN_OK is sent (STREAM_ACCEPT answers).
 */
export interface PeerOpenOk {
  readonly type: 'peer-open-ok';
  readonly tag: number;
  /** u32, not 0. */
  readonly peerTag: number;
}

/**
 * Gateway → the agent whose service a UDP peer flow reaches, before anything else of the flow:
 * connectee `tag` is agent `peer`'s flow, with this origin. The agent accepts datagrams for `tag`
 * on a direct path only from `peer`, and takes the origin from here, never from the direct
 * datagram: a peer cannot reach another tag, another service or another client's session.
 */
export interface PeerFlowNotice {
  readonly type: 'peer-flow';
  readonly tag: number;
  readonly origin: DatagramOrigin;
  readonly peer: string;
}

/** Gateway → agent: PEER_OPEN `tag` refused (not-allowed, unknown-peer, peer-offline, rate-limited, ...). */
export interface PeerOpenError {
  readonly type: 'peer-open-error';
  readonly tag: number;
  readonly code: RefusalCode;
  readonly message: string;
}

// ---- signalling passthrough (ICE) ----

/** Agent → gateway: `peer` is the addressee. Gateway → agent: `peer` is the sender. The payload is opaque. */
export interface Signal {
  readonly type: 'signal';
  readonly peer: string;
  readonly payload: Buffer;
}

/** Gateway → agent: a SIGNAL to `peer` could not be delivered. */
export interface SignalError {
  readonly type: 'signal-error';
  readonly peer: string;
  readonly code: RefusalCode;
}

export type ControlMessage =
  | Hello | Challenge | Auth | AuthOk | AuthError | Goaway
  | Publish | PublishOk | PublishError | Unpublish | ServiceHealth
  | StreamOpen | StreamAccept | StreamData | StreamEnd | StreamReset | WindowUpdate
  | DatagramFrame | DatagramClose
  | Ping | Pong
  | Offer | PeerOpen | PeerOpenOk | PeerOpenError | PeerFlowNotice
  | Signal | SignalError;

export type ControlMessageType = ControlMessage['type'];
