import net from 'node:net';
import { formatHostPort, type HostPort } from '../../core/address.js';
import { errnoCode, SluiceError } from '../../core/errors.js';
import type { DialedStream, DialOptions, StreamDialer } from '../dialer.js';
import { resolveTarget, systemResolver, type Resolver } from './resolve.js';

/** Dials TCP with a connect timeout; the socket allows half-open so FINs can be forwarded. */
export class DirectStreamDialer implements StreamDialer {
  constructor(private readonly resolver: Resolver = systemResolver) {}

  async dial(target: HostPort, opts: DialOptions): Promise<DialedStream> {
    const remote = await resolveTarget(target, this.resolver);
    const where = formatHostPort(remote.address, remote.port);
    return new Promise<DialedStream>((resolve, reject) => {
      const socket = net.connect({ host: remote.address, port: remote.port, allowHalfOpen: true, noDelay: true });
      const fail = (err: SluiceError) => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const onError = (err: Error) =>
        fail(new SluiceError('SLUICE_ERR_DIAL_FAILED', `connect to ${where} failed: ${errnoCode(err) ?? err.message}`, { cause: err }));
      const onTimeout = () => fail(new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `connect to ${where} timed out after ${opts.timeoutMs}ms`));
      const onAbort = () => fail(new SluiceError('SLUICE_ERR_CLOSED', `connect to ${where} aborted`));
      const onConnect = () => {
        cleanup();
        socket.setTimeout(0);
        resolve({ stream: socket, remote });
      };
      const cleanup = () => {
        socket.off('error', onError).off('timeout', onTimeout).off('connect', onConnect);
        opts.signal.removeEventListener('abort', onAbort);
      };
      socket.once('error', onError).once('timeout', onTimeout).once('connect', onConnect);
      socket.setTimeout(opts.timeoutMs);
      opts.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
