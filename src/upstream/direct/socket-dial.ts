import { isIP } from 'node:net';
import { formatHostPort, type Endpoint, type HostPort } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
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
 * resolved and checked once, `timeoutMs` bounds resolution and connect together. The resolution
 * of a name runs under a timer on `clock` (and the abort signal); the connect gets what is left,
 * and its deadline is the datapath's own (native: the engine's timer, docs/datapath.md).
 */
export async function dialSocket(target: HostPort, opts: DialOptions, datapath: StreamDatapath, resolver: Resolver, policy: DestinationPolicy | undefined, clock: Clock): Promise<DialedConn> {
  const where = formatHostPort(target.host, target.port);
  const started = clock.now();
  const timedOut = () => new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `connect to ${where} timed out after ${opts.timeoutMs}ms`);
  const aborted = () => new SluiceError('SLUICE_ERR_CLOSED', `connect to ${where} aborted`);
  const resolving = resolveDestination(target, resolver, policy);
  // An IP literal resolves at once: no timer for it on the per-connection path.
  const remote = await (isIP(target.host) !== 0 ? resolving : within(resolving, clock, opts, timedOut, aborted));
  const left = opts.timeoutMs > 0 ? opts.timeoutMs - (clock.now() - started) : 0;
  if (opts.timeoutMs > 0 && left <= 0) throw timedOut();
  try {
    return { conn: await datapath.connect(remote, Math.max(1, Math.ceil(left)), opts.signal), remote };
  } catch (err) {
    if (opts.signal.aborted) throw aborted();
    const code = errnoCode(err);
    if (code === 'ETIMEDOUT') throw timedOut();
    throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `connect to ${formatHostPort(remote.address, remote.port)} failed: ${code ?? (err as Error).message}`, { cause: err });
  }
}

/** `p`, or `timedOut()` once `opts.timeoutMs` passes on `clock` (0: no limit), or `aborted()` when `opts.signal` aborts. */
function within<T>(p: Promise<T>, clock: Clock, opts: DialOptions, timedOut: () => SluiceError, aborted: () => SluiceError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const settle = (fn: () => void) => {
      timer?.cancel();
      opts.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => settle(() => reject(aborted()));
    const timer = opts.timeoutMs > 0 ? clock.setTimeout(() => settle(() => reject(timedOut())), opts.timeoutMs) : undefined;
    if (opts.signal.aborted) return onAbort();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => settle(() => resolve(v)),
      (err: unknown) => settle(() => reject(err)),
    );
  });
}
