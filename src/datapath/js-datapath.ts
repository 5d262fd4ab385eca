import dgram from 'node:dgram';
import { once } from 'node:events';
import { canonicalIp, type Endpoint } from '../core/address.js';
import type { DatagramChannel, DatagramReceiver } from './datagram-channel.js';
import { literalLookup } from './literal-lookup.js';
import { receiverFor, type ListenerReceiver, type ReceiverFactory, type UdpDatapath, type UdpListener, type UdpSender } from './udp-datapath.js';
import { LISTENER_RCVBUF_BYTES, LISTENER_SNDBUF_BYTES, SESSION_RCVBUF_BYTES } from './socket-buffers.js';

/**
 * The datapath on Node's dgram: one receive callback and one send syscall per datagram. Sockets
 * get a lookup that never calls DNS (they only ever see IP literals), which spares each
 * unconnected send a tick and a closure.
 */
export const jsDatapath: UdpDatapath = {
  kind: 'js',

  async listen<R extends ListenerReceiver>(host: string, port: number, receiverOrFactory: R | ReceiverFactory<R>): Promise<UdpListener<R>> {
    const socket = dgram.createSocket({
      type: host.includes(':') ? 'udp6' : 'udp4',
      lookup: literalLookup as never,
      recvBufferSize: LISTENER_RCVBUF_BYTES,
      sendBufferSize: LISTENER_SNDBUF_BYTES,
    });
    try {
      // Listen before binding: with a synchronous lookup, 'listening' can fire inside bind().
      const listening = once(socket, 'listening');
      socket.bind({ address: host, port, exclusive: true });
      await listening;
    } catch (err) {
      socket.close();
      throw err;
    }
    const a = socket.address();
    const local: Endpoint = { address: canonicalIp(a.address)?.address ?? a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
    let closed: Promise<void> | undefined;
    const bound: UdpSender = {
      local,
      send: (buf, p, address, prefix) => (prefix ? socket.send([prefix, buf], p, address) : socket.send(buf, p, address)),
      close: () => (closed ??= new Promise<void>((resolve) => socket.close(() => resolve()))),
    };
    const receiver = receiverFor(bound, receiverOrFactory);
    socket.on('error', (err) => receiver.onSendError(err));
    socket.on('message', (msg, rinfo) => receiver.onDatagram(msg, rinfo.address, rinfo.port));
    return { ...bound, receiver };
  },

  async connect(remote: Endpoint, receiver: DatagramReceiver): Promise<DatagramChannel> {
    // Node applies recvBufferSize at the implicit bind of connect(); the kernel caps it at rmem_max.
    const socket = dgram.createSocket({ type: remote.family === 6 ? 'udp6' : 'udp4', lookup: literalLookup as never, recvBufferSize: SESSION_RCVBUF_BYTES });
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
      throw err;
    }
    return new ConnectedChannel(socket, remote, receiver);
  },
};

/**
 * One connected UDP socket per session: the kernel filters replies to the upstream's address, and
 * a connected send skips the per-datagram address handling of an unconnected one.
 */
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
