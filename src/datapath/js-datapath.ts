import dgram from 'node:dgram';
import { once } from 'node:events';
import { canonicalIp, type Endpoint } from '../core/address.js';
import type { DatagramChannel, DatagramReceiver } from '../upstream/dialer.js';
import { literalLookup } from '../upstream/direct/resolve.js';
import type { ListenerReceiver, UdpDatapath, UdpListener } from './udp-datapath.js';
import { LISTENER_RCVBUF_BYTES, LISTENER_SNDBUF_BYTES } from './socket-buffers.js';

/**
 * The datapath on Node's dgram: one receive callback and one send syscall per datagram. Sockets
 * get a lookup that never calls DNS (they only ever see IP literals), which spares each
 * unconnected send a tick and a closure.
 */
export const jsDatapath: UdpDatapath = {
  kind: 'js',

  async listen(host: string, port: number, receiver: ListenerReceiver): Promise<UdpListener> {
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
    socket.on('error', (err) => receiver.onSendError(err));
    socket.on('message', (msg, rinfo) => receiver.onDatagram(msg, rinfo.address, rinfo.port));
    const a = socket.address();
    const local: Endpoint = { address: canonicalIp(a.address)?.address ?? a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
    let closed: Promise<void> | undefined;
    return {
      local,
      send: (buf, p, address) => socket.send(buf, p, address),
      close: () => (closed ??= new Promise<void>((resolve) => socket.close(() => resolve()))),
    };
  },

  async connect(remote: Endpoint, receiver: DatagramReceiver): Promise<DatagramChannel> {
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
