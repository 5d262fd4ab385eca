import { formatHostPort, type Endpoint, type HostPort } from '../../core/address.js';
import { errnoCode, SluiceError } from '../../core/errors.js';
import type { StreamConn, StreamDatapath } from '../../datapath/stream-datapath.js';
import type { DialOptions } from '../dialer.js';
import { resolveDestination, type DestinationPolicy, type Resolver } from './resolve.js';

/** An upstream dialed as a connection of a stream datapath (which may join it to the client without Node streams). */
export interface DialedConn {
  readonly conn: StreamConn;
  readonly remote: Endpoint;
}

/** A dialer whose upstreams are plain sockets, so the route's stream datapath may connect them itself. */
export interface SocketDialer {
  dialConn(target: HostPort, opts: DialOptions, datapath: StreamDatapath): Promise<DialedConn> | undefined;
}

export function isSocketDialer(d: object): d is SocketDialer {
  return typeof (d as Partial<SocketDialer>).dialConn === 'function';
}

/**
 * The direct dial on a stream datapath, with the errors DirectStreamDialer gives: the name is
 * resolved and checked once, `timeoutMs` bounds resolution and connect together.
 */
export async function dialSocket(target: HostPort, opts: DialOptions, datapath: StreamDatapath, resolver: Resolver, policy: DestinationPolicy | undefined): Promise<DialedConn> {
  const where = formatHostPort(target.host, target.port);
  const started = performance.now();
  const timedOut = () => new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `connect to ${where} timed out after ${opts.timeoutMs}ms`);
  const remote = await resolveDestination(target, resolver, policy);
  const left = opts.timeoutMs > 0 ? opts.timeoutMs - (performance.now() - started) : 0;
  if (opts.timeoutMs > 0 && left <= 0) throw timedOut();
  try {
    return { conn: await datapath.connect(remote, Math.max(1, Math.ceil(left)), opts.signal), remote };
  } catch (err) {
    if (opts.signal.aborted) throw new SluiceError('SLUICE_ERR_CLOSED', `connect to ${where} aborted`);
    const code = errnoCode(err);
    if (code === 'ETIMEDOUT') throw timedOut();
    throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `connect to ${formatHostPort(remote.address, remote.port)} failed: ${code ?? (err as Error).message}`, { cause: err });
  }
}
