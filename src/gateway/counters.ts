import type { DatagramRejectReason, RefusalCode, ServiceTransport } from '../protocol/tunnel/index.js';
import type { HandshakeFailure } from './handshake.js';
import type { FairDropReason } from '../core/fair-share.js';
import type { DataConnRefusal } from './data-conns.js';
import type { DataConnDeath } from '../upstream/agent/data-conn-stream.js';

/**
 * What the gateway counts (cumulative). Read by whoever publishes metrics; the gateway never
 * writes a log line per datagram. Refusals are counted by their protocol code (docs/expose.md).
 */
export interface GatewayCounters {
  authOk: number;
  authResumed: number;
  /** Handshakes that failed, by refusal code or reason. */
  authRefused: Partial<Record<HandshakeFailure, number>>;
  /** Connections closed before TLS because of the pre-auth caps. */
  preAuthCapped: number;
  /** Connections closed before TLS because their source is banned (docs/bans.md). */
  preAuthBanned: number;
  /** Pre-auth connections closed to make room for a newcomer (the table was full; docs/security.md). */
  preAuthEvicted: number;
  tlsErrors: number;
  /** Data connections kept idle for streams (docs/tunnel-protocol.md, "Data connections"). */
  dataConnAccepted: number;
  /** Data connections closed before use, by reason. */
  dataConnRefused: Record<DataConnRefusal, number>;
  /** Exposed TCP streams carried on a data connection (the others ride the control connection). */
  dataConnStreams: number;
  /** Data connections back from a clean stream whose next hello was admitted: kept idle again (data-conn-return.ts). */
  dataConnReused: number;
  /** Data connections found dead when a stream was to start on them (no READY), by why; the stream went multiplexed. */
  dataConnDead: Record<DataConnDeath, number>;
  /** Exposed TCP streams attached to a trunk (docs/tunnel-protocol.md, "Trunks"). */
  trunkStreams: number;
  /** Streams whose trunk was gone before their attach (here, or the agent's STREAM_RESET internal): they went multiplexed. */
  trunkFallbacks: number;
  /** Streams whose trunk sent no READY within the grace after STREAM_ACCEPT (dead while idle): the trunk was closed, they went multiplexed. */
  trunkNoReady: number;
  publishOk: number;
  publishRefused: Partial<Record<string, number>>;
  keepalives: number;
  agentAddressMoves: number;
  datagramsFromAgent: number;
  datagramsFromAgentOverTls: number;
  datagramsToAgent: number;
  datagramsToAgentOverTls: number;
  datagramsToAgentDropped: number;
  /** Datagrams toward agents the send budget dropped before sealing, by reason (docs/expose.md, "Fairness under a flood"). */
  datagramsToAgentShed: Record<FairDropReason, number>;
  /** Tunnel datagrams whose key id belongs to no session. */
  datagramUnknownKey: number;
  datagramRejected: Record<DatagramRejectReason, number>;
  /** SIGNALs delivered to another agent. */
  signalsForwarded: number;
  /** SIGNALs answered with SIGNAL_ERROR, by refusal code. */
  signalsRefused: Partial<Record<RefusalCode, number>>;
  /** PEER_OPEN outcomes by transport: `ok`, the refusal code, or (tcp) `dial-failed` / `refused` by the target. */
  peerFlows: Record<ServiceTransport, Partial<Record<string, number>>>;
  /** Relayed UDP peer datagrams and their payload bytes: opener -> target service, and back. */
  peerDatagramsToService: number;
  peerDatagramsToOpener: number;
  peerBytesToService: number;
  peerBytesToOpener: number;
  /** Datagrams for an opener that could not be sent (not fresh on UDP, control connection full or gone). */
  peerDatagramsDropped: number;
  /** Bytes of finished relayed TCP peer streams, each way. */
  peerStreamBytesToService: number;
  peerStreamBytesToOpener: number;
  /**
   * Datagrams the shared UDP port could not send (the kernel refused them: a full buffer, an
   * unreachable address), from JavaScript or a relayed flow in the batch. Best effort: each is
   * lost alone. The exposure's sessions in the batch count theirs with their session.
   */
  udpSendErrors: number;
}

export function newGatewayCounters(): GatewayCounters {
  return {
    authOk: 0,
    authResumed: 0,
    authRefused: {},
    preAuthCapped: 0,
    preAuthBanned: 0,
    preAuthEvicted: 0,
    tlsErrors: 0,
    dataConnAccepted: 0,
    dataConnRefused: { 'bad-hello': 0, 'unknown-token': 0, replayed: 0, forged: 0, timeout: 0, 'pool-full': 0 },
    dataConnStreams: 0,
    dataConnReused: 0,
    dataConnDead: { closed: 0, forged: 0, 'no-ready': 0 },
    trunkStreams: 0,
    trunkFallbacks: 0,
    trunkNoReady: 0,
    publishOk: 0,
    publishRefused: {},
    keepalives: 0,
    agentAddressMoves: 0,
    datagramsFromAgent: 0,
    datagramsFromAgentOverTls: 0,
    datagramsToAgent: 0,
    datagramsToAgentOverTls: 0,
    datagramsToAgentDropped: 0,
    datagramsToAgentShed: { 'agent-budget': 0, 'session-share': 0, stale: 0 },
    datagramUnknownKey: 0,
    datagramRejected: { malformed: 0, 'unknown-key': 0, 'too-old': 0, replayed: 0, 'auth-failed': 0, 'bad-plaintext': 0, 'key-exhausted': 0 },
    signalsForwarded: 0,
    signalsRefused: {},
    peerFlows: { tcp: {}, udp: {} },
    peerDatagramsToService: 0,
    peerDatagramsToOpener: 0,
    peerBytesToService: 0,
    peerBytesToOpener: 0,
    peerDatagramsDropped: 0,
    peerStreamBytesToService: 0,
    peerStreamBytesToOpener: 0,
    udpSendErrors: 0,
  };
}
