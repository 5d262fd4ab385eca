import dgram from 'node:dgram';
import { formatHostPort, type Endpoint, type HostPort } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';
import type { DatagramChannel, DatagramDialer, DatagramReceiver, DialOptions } from '../dialer.js';
import { literalLookup, resolveTarget, systemResolver, type Resolver } from './resolve.js';

/**
 * One connected UDP socket per session: the kernel filters replies to the upstream's address, and
 * a connected send skips the per-datagram address handling of an unconnected one.
 */
export class DirectDatagramDialer implements DatagramDialer {
  constructor(private readonly resolver: Resolver = systemResolver) {}

  async open(target: HostPort, receiver: DatagramReceiver, opts: DialOptions): Promise<DatagramChannel> {
    const remote = await resolveTarget(target, this.resolver);
    opts.signal.throwIfAborted();
    const socket = dgram.createSocket({ type: remote.family === 6 ? 'udp6' : 'udp4', lookup: literalLookup as never });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(remote.port, remote.address, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `udp connect to ${formatHostPort(remote.address, remote.port)} failed`, { cause: err });
    }
    return new ConnectedChannel(socket, remote, receiver);
  }
}

class ConnectedChannel implements DatagramChannel {
  #closed = false;
  constructor(
    private readonly socket: dgram.Socket,
    readonly remote: Endpoint,
    receiver: DatagramReceiver,
  ) {
    socket.on('message', (buf) => receiver.onUpstreamDatagram(buf));
    socket.on('error', (err) => receiver.onUpstreamError(err));
  }

  send(buf: Buffer, prefix: Buffer | null): void {
    if (this.#closed) return;
    if (prefix === null) this.socket.send(buf);
    else this.socket.send([prefix, buf]);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.close();
  }
}
