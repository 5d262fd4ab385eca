import type { Duplex } from 'node:stream';
import type { Endpoint, HostPort } from '../../core/address.js';
import type { DatagramChannel, DatagramDialer, DatagramReceiver, DialedStream, DialOptions, StreamDialer } from '../dialer.js';

/**
 * The dialers of a `connect` listener: another agent's service over a peer path (docs/connect.md).
 * What stands behind them (relay through the gateway, direct path by ICE) is the agent's business;
 * the route sees an ordinary upstream.
 */
export interface PeerFlows {
  /** Never waits for a path: the channel queues (bounded) until one exists. */
  openFlow(target: PeerTarget, receiver: DatagramReceiver): DatagramChannel;
  /** A TCP stream through the gateway; resolves once the peer accepted it. */
  openStream(target: PeerTarget, opts: DialOptions): Promise<{ stream: Duplex; remote: Endpoint }>;
}

export interface PeerTarget {
  /** The connect entry's name. */
  readonly name: string;
  readonly peer: string;
  readonly service: string;
  readonly path: 'auto' | 'direct' | 'relay';
}

export class PeerDatagramDialer implements DatagramDialer {
  constructor(
    private readonly flows: PeerFlows,
    private readonly target: PeerTarget,
  ) {}

  open(_target: HostPort, receiver: DatagramReceiver): Promise<DatagramChannel> {
    return Promise.resolve(this.flows.openFlow(this.target, receiver));
  }
}

export class PeerStreamDialer implements StreamDialer {
  constructor(
    private readonly flows: PeerFlows,
    private readonly target: PeerTarget,
  ) {}

  async dial(_target: HostPort, opts: DialOptions): Promise<DialedStream> {
    return this.flows.openStream(this.target, opts);
  }
}
