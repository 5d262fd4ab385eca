import { formatHostPort, type Endpoint, type HostPort } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
import { errnoCode, SluiceError } from '../../core/errors.js';
import { connectStream, failedDial, type DialInFlight, type StreamConn, type StreamDatapath } from '../../datapath/stream-datapath.js';
import type { DialOptions } from '../dialer.js';
import { pinLiteral, resolveDestination, type DestinationPolicy, type Resolver } from './resolve.js';

/** An upstream dialed as a connection of a stream datapath (which may join it to the client without Node streams). */
export interface DialedConn {
  readonly conn: StreamConn;
  readonly remote: Endpoint;
}

/** Called once with the dialed upstream, or a SluiceError with the codes StreamDialer.dial gives. */
export type DialedConnDone = (err: SluiceError | undefined, dialed?: DialedConn) => void;

/** A dialer whose upstreams are plain sockets, so the route's stream datapath may connect them itself. */
export interface SocketDialer {
  /**
   * Dials `target` as a connection of `datapath`. `done` is called once and never before this
   * returns, unless the returned dial is cancelled first (then what was dialed is closed).
   * `opts.signal` is checked when the dial starts and bounds a name's resolution and connect; a
   * literal's connect in flight is stopped with `cancel` (no listener on the signal per dial).
   * Undefined when this dialer must dial through Node.
   */
  dialConn(target: HostPort, opts: DialOptions, datapath: StreamDatapath, done: DialedConnDone): DialInFlight | undefined;
}

export function isSocketDialer(d: object): d is SocketDialer {
  return typeof (d as Partial<SocketDialer>).dialConn === 'function';
}

/**
 * The direct dial on a stream datapath, with the errors DirectStreamDialer gives: the name is
 * resolved and checked once, `timeoutMs` bounds resolution and connect together. An IP literal
 * (the usual upstream) is pinned and checked at once and dialed with no promise and no timer of
 * its own; a name is resolved under a timer on `clock` (and the abort signal), and the connect
 * gets what is left. The connect deadline is the datapath's own (native: the engine's timer,
 * docs/datapath.md).
 */
export function dialSocket(target: HostPort, opts: DialOptions, datapath: StreamDatapath, resolver: Resolver, policy: DestinationPolicy | undefined, clock: Clock, done: DialedConnDone): DialInFlight {
  let remote: Endpoint | undefined;
  try {
    remote = pinnedLiteral(target, policy);
  } catch (err) {
    return failedDial(err as SluiceError, done);
  }
  if (remote === undefined) return dialName(target, opts, datapath, resolver, policy, clock, done);
  if (opts.signal.aborted) return failedDial(aborted(target), done);
  const to = remote;
  return datapath.dial(to, opts.timeoutMs, (err, conn) => (err ? done(connectError(err, target, to, opts)) : done(undefined, { conn: conn!, remote: to })), opts.join);
}

/**
 * pinLiteral of the last target dialed: a route dials the same upstream object (its config's,
 * replaced, never changed, on reload) for every connection, so the literal is parsed and checked
 * once per target instead of once per connection. A refusal throws and is not kept.
 */
let lastTarget: HostPort | undefined;
let lastPolicy: DestinationPolicy | undefined;
let lastPinned: Endpoint | undefined;

function pinnedLiteral(target: HostPort, policy: DestinationPolicy | undefined): Endpoint | undefined {
  if (target === lastTarget && policy === lastPolicy) return lastPinned;
  const pinned = pinLiteral(target, policy);
  lastTarget = target;
  lastPolicy = policy;
  lastPinned = pinned;
  return pinned;
}

function dialName(target: HostPort, opts: DialOptions, datapath: StreamDatapath, resolver: Resolver, policy: DestinationPolicy | undefined, clock: Clock, done: DialedConnDone): DialInFlight {
  let live = true;
  const started = clock.now();
  within(resolveDestination(target, resolver, policy), clock, opts, target)
    .then(async (remote) => {
      const left = opts.timeoutMs > 0 ? opts.timeoutMs - (clock.now() - started) : 0;
      if (opts.timeoutMs > 0 && left <= 0) throw timedOut(target, opts);
      try {
        return { conn: await connectStream(datapath, remote, Math.max(1, Math.ceil(left)), opts.signal), remote };
      } catch (err) {
        throw connectError(err, target, remote, opts);
      }
    })
    .then(
      (dialed) => (live ? done(undefined, dialed) : dialed.conn.destroy()),
      (err: SluiceError) => live && done(err),
    );
  return { cancel: () => void (live = false) };
}

function timedOut(target: HostPort, opts: DialOptions): SluiceError {
  return new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `connect to ${formatHostPort(target.host, target.port)} timed out after ${opts.timeoutMs}ms`);
}

function aborted(target: HostPort): SluiceError {
  return new SluiceError('SLUICE_ERR_CLOSED', `connect to ${formatHostPort(target.host, target.port)} aborted`);
}

/** A datapath's connect error as the dialer's: aborted, timed out, or failed with its errno. */
function connectError(err: unknown, target: HostPort, remote: Endpoint, opts: DialOptions): SluiceError {
  if (opts.signal.aborted) return aborted(target);
  const code = errnoCode(err);
  if (code === 'ETIMEDOUT') return timedOut(target, opts);
  return new SluiceError('SLUICE_ERR_DIAL_FAILED', `connect to ${formatHostPort(remote.address, remote.port)} failed: ${code ?? (err as Error).message}`, { cause: err });
}

/** `p`, or a timeout once `opts.timeoutMs` passes on `clock` (0: no limit), or aborted when `opts.signal` aborts. */
function within<T>(p: Promise<T>, clock: Clock, opts: DialOptions, target: HostPort): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const settle = (fn: () => void) => {
      timer?.cancel();
      opts.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => settle(() => reject(aborted(target)));
    const timer = opts.timeoutMs > 0 ? clock.setTimeout(() => settle(() => reject(timedOut(target, opts))), opts.timeoutMs) : undefined;
    if (opts.signal.aborted) return onAbort();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => settle(() => resolve(v)),
      (err: unknown) => settle(() => reject(err)),
    );
  });
}
