import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { foundationOf, type IceCandidate } from './candidate.js';
import type { IceBase } from './checklist.js';
import { candidatePriority } from './priority.js';
import type { RelayAllocation, RelayTransport } from '../turn/relay-transport.js';
import { StunTransactionTable, type StunRetransmitTiming } from '../turn/stun-transaction.js';

/**
 * The two kinds of base an ICE agent sends from (RFC 8445 §5.1.1): a UDP socket it was given, and
 * a relay allocation. Each has its own STUN transaction table, so a response finds the check
 * that asked for it whichever way it came back.
 */

/**
 * One UDP socket the agent may use. The caller owns it: it binds and closes it, and feeds every
 * datagram it receives to the function `IceAgent.addSocket` returns (which says whether the
 * agent took it, so the socket can also carry other traffic).
 */
export interface IceSocket {
  /**
   * The host candidate: an address of this machine and the socket's port. For a socket bound to
   * a wildcard, name the one interface address to advertise; one socket gives one host candidate.
   */
  readonly local: Endpoint;
  /** Sends one datagram. May throw (socket closed); the agent counts that as a loss. */
  send(buf: Buffer, port: number, address: string): void;
}

export function socketBase(id: number, socket: IceSocket, localPreference: number, clock: Clock, signal: AbortSignal, timing?: Partial<StunRetransmitTiming>): IceBase {
  const candidate: IceCandidate = {
    foundation: foundationOf('host', socket.local.address), component: 1, transport: 'udp',
    priority: candidatePriority('host', localPreference), address: socket.local.address, port: socket.local.port,
    family: socket.local.family, type: 'host',
  };
  const send = (buf: Buffer, port: number, address: string) => {
    try {
      socket.send(buf, port, address);
    } catch {
      // a datagram lost; UDP may lose it anyway, and retransmission or consent copes
    }
  };
  return {
    id, kind: 'socket', address: socket.local, candidate,
    table: new StunTransactionTable({ clock, send, signal }, timing),
    send: (buf, to) => send(buf, to.port, to.address),
  };
}

export function relayBase(
  id: number, relay: RelayTransport, allocation: RelayAllocation, server: string, localPreference: number, clock: Clock, signal: AbortSignal,
  timing?: Partial<StunRetransmitTiming>,
): IceBase {
  const { relayed, mapped } = allocation;
  const candidate: IceCandidate = {
    foundation: foundationOf('relay', mapped?.address ?? relayed.address, server), component: 1, transport: 'udp',
    priority: candidatePriority('relay', localPreference), address: relayed.address, port: relayed.port, family: relayed.family,
    type: 'relay', ...(mapped ? { related: { address: mapped.address, port: mapped.port } } : {}),
  };
  const send = (buf: Buffer, port: number, address: string) => relay.send(buf, { address, port });
  return {
    id, kind: 'relay', address: relayed, candidate,
    table: new StunTransactionTable({ clock, send, signal }, timing),
    send: (buf, to) => relay.send(buf, to),
  };
}

/** The server-reflexive candidate for `mapped` as seen by `server` from `base` (RFC 8445 §5.1.1.2). */
export function srflxCandidate(base: IceBase, mapped: Endpoint, server: string, localPreference: number): IceCandidate {
  return {
    foundation: foundationOf('srflx', base.address.address, server), component: 1, transport: 'udp',
    priority: candidatePriority('srflx', localPreference), address: mapped.address, port: mapped.port, family: mapped.family,
    type: 'srflx', related: { address: base.address.address, port: base.address.port },
  };
}
