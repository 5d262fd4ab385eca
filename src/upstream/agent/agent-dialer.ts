import type { HostPort } from '../../core/address.js';
import type { SluiceError } from '../../core/errors.js';
import type {
  DatagramChannel, DatagramDialer, DatagramReceiver, DialedStream, DialOptions, StreamDialer,
} from '../dialer.js';
import { UNSPECIFIED, type AgentTunnel } from './agent-tunnel.js';

/**
 * The upstream of an exposed service's public TCP listener: every dial is one multiplexed stream
 * to the agent, which connects to its local service. `target` is not used: the service id says
 * where. The route's client and local address travel in STREAM_OPEN (the agent's PROXY header).
 */
export class AgentStreamDialer implements StreamDialer {
  constructor(
    private readonly tunnel: AgentTunnel,
    private readonly serviceId: number,
  ) {}

  async dial(_target: HostPort, opts: DialOptions): Promise<DialedStream> {
    const stream = await this.tunnel.openStream(this.serviceId, opts.client ?? UNSPECIFIED, opts.local ?? UNSPECIFIED, opts);
    return { stream, remote: this.tunnel.remote };
  }

  /** The stream before the agent accepted it: the client's first bytes ride with STREAM_OPEN. */
  dialEarly(_target: HostPort, opts: DialOptions, settled: (err?: SluiceError) => void): DialedStream {
    return { stream: this.tunnel.openStreamEarly(this.serviceId, opts.client ?? UNSPECIFIED, opts.local ?? UNSPECIFIED, opts, settled), remote: this.tunnel.remote };
  }
}

/**
 * The upstream of an exposed service's public UDP listener: every session is one connectee tag
 * of the agent; its datagrams go sealed over UDP (or over the control channel when UDP is
 * blocked). Opening allocates a tag and never waits.
 */
export class AgentDatagramDialer implements DatagramDialer {
  constructor(
    private readonly tunnel: AgentTunnel,
    private readonly serviceId: number,
    /** For one port of a range service: that public port, so the agent knows which local port to reach. */
    private readonly port?: number,
  ) {}

  async open(_target: HostPort, receiver: DatagramReceiver, opts: DialOptions): Promise<DatagramChannel> {
    opts.signal.throwIfAborted();
    return this.tunnel.openDatagram(this.serviceId, opts.client ?? UNSPECIFIED, receiver, true, this.port);
  }
}
