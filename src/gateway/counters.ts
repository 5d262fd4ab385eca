import type { DatagramRejectReason } from '../protocol/tunnel/index.js';
import type { HandshakeFailure } from './handshake.js';

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
  tlsErrors: number;
  publishOk: number;
  publishRefused: Partial<Record<string, number>>;
  keepalives: number;
  agentAddressMoves: number;
  datagramsFromAgent: number;
  datagramsFromAgentOverTls: number;
  datagramsToAgent: number;
  datagramsToAgentOverTls: number;
  datagramsToAgentDropped: number;
  /** Tunnel datagrams whose key id belongs to no session. */
  datagramUnknownKey: number;
  datagramRejected: Record<DatagramRejectReason, number>;
}

export function newGatewayCounters(): GatewayCounters {
  return {
    authOk: 0,
    authResumed: 0,
    authRefused: {},
    preAuthCapped: 0,
    tlsErrors: 0,
    publishOk: 0,
    publishRefused: {},
    keepalives: 0,
    agentAddressMoves: 0,
    datagramsFromAgent: 0,
    datagramsFromAgentOverTls: 0,
    datagramsToAgent: 0,
    datagramsToAgentOverTls: 0,
    datagramsToAgentDropped: 0,
    datagramUnknownKey: 0,
    datagramRejected: { malformed: 0, 'unknown-key': 0, 'too-old': 0, replayed: 0, 'auth-failed': 0, 'bad-plaintext': 0, 'key-exhausted': 0 },
  };
}
