import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../core/address.js';
import type { SluiceError } from '../../core/errors.js';
import type { DatagramChannel, DatagramReceiver, DialOptions } from '../dialer.js';

/**
 * What the agent dialers need from a connected agent (the gateway's AgentLink): a stream to one
 * published service, and a datagram channel (a connectee tag) to one. Implementations reject or
 * throw SluiceError (DIAL_FAILED when the agent is away, LIMIT, DIAL_TIMEOUT).
 */
export interface AgentTunnel {
  /** Where the agent is, for records. */
  readonly remote: Endpoint;
  openStream(serviceId: number, client: Endpoint, server: Endpoint, opts: DialOptions): Promise<Duplex>;
  /** The stream at once, before the agent accepted it (StreamDialer.dialEarly's contract). */
  openStreamEarly(serviceId: number, client: Endpoint, server: Endpoint, opts: DialOptions, settled: (err?: SluiceError) => void): Duplex;
  /** `port`: for a service published with a port range, the public port the client sent to (told to the agent). */
  openDatagram(serviceId: number, client: Endpoint, receiver: DatagramReceiver, retag?: boolean, port?: number): DatagramChannel;
}

/** An address for sessions whose route did not say (never the case for TcpRoute and UdpRoute). */
export const UNSPECIFIED: Endpoint = { address: '0.0.0.0', port: 0, family: 4 };
