import type { Duplex } from 'node:stream';
import type { Clock } from '../core/clock.js';
import type { EventStream } from '../observe/events.js';
import type { IceTiming } from '../ice/agent.js';
import type { IceSocket } from '../ice/bases.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import type { ControlMessage, DatagramOrigin, OpenerOptions, SealerOptions } from '../protocol/tunnel/index.js';
import type { SocketOpener, SocketSealer } from '../datapath/socket-keys.js';
import type { DialOptions } from '../upstream/dialer.js';
import type { RelayPath } from './peer-flow.js';
import type { PeerLink } from './peer-link.js';

/**
 * The seams of the peers manager (peers.ts): what it needs of the agent's gateway connection and
 * datagram path, and what it reports. The agent implements them; nothing here is owned by Peers.
 */

/** What the manager needs of the agent's gateway connection while it is up. */
export interface PeerControl {
  send(m: ControlMessage): void;
  /** Opens an agent-side stream; `beforeOpen` runs with its id before STREAM_OPEN is sent. */
  openStream(opts: DialOptions, beforeOpen: (streamId: number) => void): Promise<Duplex>;
}

/** The agent's gateway datagram path, as the peers use it. */
export interface PeerDatagramPath extends RelayPath {
  sendClose(tag: number): void;
  iceSocket(): IceSocket | undefined;
  gatewayStun(): StunPeer | undefined;
  /** The opener of a direct path's key, on the gateway socket's datapath. */
  opener?(opts: OpenerOptions): SocketOpener;
  /** The sealer of a peer's direct-path key, sending from the gateway socket. */
  sealer?(opts: SealerOptions): SocketSealer;
}

export interface PeersDeps {
  readonly clock: Clock;
  /** Where the links' send budgets report their drops (`datagrams-dropped` per connect route). */
  readonly events?: EventStream;
  readonly path: PeerDatagramPath;
  /** A direct datagram for an exposed service's connectee tag (LocalServices.onGatewayDatagram). */
  readonly deliverExposed: (tag: number, origin: DatagramOrigin | undefined, payload: Buffer) => void;
  readonly changed?: (link: PeerLink) => void;
  readonly iceTiming?: Partial<IceTiming>;
}
