import { formatHostPort } from '../core/address.js';
import { SluiceError } from '../core/errors.js';
import type { ListenerReceiver, UdpDatapath, UdpListener } from '../datapath/udp-datapath.js';

/** Binds the main socket of a server or client on `datapath`. Rejects with SLUICE_ERR_BIND naming the address. */
export async function bindMain(datapath: UdpDatapath, host: string, port: number, receiver: ListenerReceiver): Promise<UdpListener> {
  try {
    const socket = await datapath.listen(host, port, receiver);
    // The other role of a Sluice pair sends its runs to this socket with UDP_SEGMENT (the server's
    // frames to its client, the client's to its server): on the native datapath they arrive as one
    // buffer, cut back into their datagrams in the batch. A real udpexposer's datagrams arrive one
    // by one as before.
    socket.coalesce?.();
    return socket;
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_BIND', `cannot bind udp ${formatHostPort(host, port)}: ${(err as Error).message}`, { cause: err });
  }
}
