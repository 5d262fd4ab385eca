import { formatHostPort } from '../core/address.js';
import { SluiceError } from '../core/errors.js';
import type { ListenerReceiver, UdpDatapath, UdpListener } from '../datapath/udp-datapath.js';

/** Binds the main socket of a server or client on `datapath`. Rejects with SLUICE_ERR_BIND naming the address. */
export async function bindMain(datapath: UdpDatapath, host: string, port: number, receiver: ListenerReceiver): Promise<UdpListener> {
  try {
    return await datapath.listen(host, port, receiver);
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_BIND', `cannot bind udp ${formatHostPort(host, port)}: ${(err as Error).message}`, { cause: err });
  }
}
