import dgram from 'node:dgram';
import { once } from 'node:events';
import { SluiceError } from '../core/errors.js';
import { formatHostPort } from '../core/address.js';
import { literalLookup } from '../upstream/direct/resolve.js';

/**
 * Binds a UDP socket to an IP literal. The caller owns the socket and closes it; aborting
 * `signal` closes it too. Rejects with SLUICE_ERR_BIND.
 */
export type UdpBinder = (opts: { readonly host: string; readonly port: number; readonly signal: AbortSignal }) => Promise<dgram.Socket>;

export const bindDgram: UdpBinder = async ({ host, port, signal }) => {
  const type = host.includes(':') ? 'udp6' : 'udp4';
  // literalLookup: every address here is an IP literal, and Node's default lookup costs a tick per unconnected send.
  const socket = dgram.createSocket({ type, signal, lookup: literalLookup });
  try {
    // Listen before binding: with a synchronous lookup, 'listening' can fire inside bind().
    const listening = once(socket, 'listening');
    socket.bind(port, host);
    await listening;
  } catch (err) {
    try {
      socket.close();
    } catch {
      // already closed by the abort signal
    }
    throw new SluiceError('SLUICE_ERR_BIND', `cannot bind udp ${formatHostPort(host, port)}: ${(err as Error).message}`, { cause: err });
  }
  return socket;
};

/** A DatagramSender over `socket` that counts failures instead of throwing. */
export function socketSender(socket: dgram.Socket, onError: (err: Error) => void) {
  const cb = (err: Error | null) => {
    if (err) onError(err);
  };
  return (parts: Buffer | readonly Buffer[], port: number, address: string): void => {
    try {
      socket.send(parts as Buffer | Buffer[], port, address, cb);
    } catch (err) {
      onError(err as Error);
    }
  };
}
