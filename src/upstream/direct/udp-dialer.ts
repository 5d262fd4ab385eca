import { formatHostPort, type HostPort } from '../../core/address.js';
import { errnoCode, SluiceError } from '../../core/errors.js';
import type { UdpDatapath } from '../../datapath/udp-datapath.js';
import { jsDatapath } from '../../datapath/js-datapath.js';
import type { DatagramChannel, DatagramDialer, DatagramReceiver, OpenOptions } from '../dialer.js';
import { resolveDestination, systemResolver, type DestinationPolicy, type Resolver } from './resolve.js';

/**
 * Opens one connected socket per session to a host:port, through the datapath in use, at the
 * address resolveDestination pinned under `policy` (default `trusted`: upstreams from the config).
 */
export class DirectDatagramDialer implements DatagramDialer {
  constructor(
    private readonly resolver: Resolver = systemResolver,
    private readonly datapath: UdpDatapath = jsDatapath,
    private readonly policy: DestinationPolicy = 'trusted',
  ) {}

  async open(target: HostPort, receiver: DatagramReceiver, opts: OpenOptions): Promise<DatagramChannel> {
    const remote = await resolveDestination(target, this.resolver, this.policy);
    opts.signal.throwIfAborted();
    try {
      return await this.datapath.connect(remote, receiver);
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `udp connect to ${formatHostPort(remote.address, remote.port)} failed: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
  }
}
