import { formatHostPort, type Endpoint, type HostPort } from '../../core/address.js';
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
  /** The address the last dial went to: sessions to the same one share this object (one per service, not per session). */
  #last: Endpoint | undefined;

  constructor(
    private readonly resolver: Resolver = systemResolver,
    private readonly datapath: UdpDatapath = jsDatapath,
    private readonly policy: DestinationPolicy = 'trusted',
  ) {}

  async open(target: HostPort, receiver: DatagramReceiver, opts: OpenOptions): Promise<DatagramChannel> {
    const resolved = await resolveDestination(target, this.resolver, this.policy);
    opts.signal.throwIfAborted();
    const last = this.#last;
    const remote = last !== undefined && sameEndpoint(last, resolved) ? last : (this.#last = resolved);
    try {
      return await this.datapath.connect(remote, receiver);
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `udp connect to ${formatHostPort(remote.address, remote.port)} failed: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
  }
}

const sameEndpoint = (a: Endpoint, b: Endpoint): boolean => a.address === b.address && a.port === b.port && a.family === b.family;
