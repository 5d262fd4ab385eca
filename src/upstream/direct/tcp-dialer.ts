import net from 'node:net';
import { formatHostPort, type Endpoint, type HostPort } from '../../core/address.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { errnoCode, SluiceError } from '../../core/errors.js';
import type { DialedStream, DialOptions, StreamDialer } from '../dialer.js';
import { resolveDestination, systemResolver, type DestinationPolicy, type Resolver } from './resolve.js';
import type { DialInFlight, StreamDatapath } from '../../datapath/stream-datapath.js';
import { dialSocket, type DialedConnDone, type SocketDialer } from './socket-dial.js';

export interface DirectDialerOptions {
  /** What the dialed addresses may be (default `trusted`: upstreams from the config). */
  readonly policy?: DestinationPolicy;
  /** Opens the socket; tests inject one to see which address is dialed. Always given an IP literal. */
  readonly connect?: (opts: net.NetConnectOpts) => net.Socket;
  /** Runs the dial timeout (default: the system's timers, holding the process open while a dial is in flight). */
  readonly clock?: Clock;
}

/**
 * The system clock with referenced timers: a dial in flight is work to do, so its timeout keeps
 * the process alive (systemClock's timers do not) while a name resolution is pending.
 */
const dialClock: Clock = {
  ...systemClock,
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Dials TCP. `timeoutMs` bounds the whole dial, name resolution included. The name is resolved
 * and checked once (resolveDestination) and the socket is given the pinned address. The socket
 * allows half-open so FINs can be forwarded.
 */
export class DirectStreamDialer implements StreamDialer, SocketDialer {
  constructor(
    private readonly resolver: Resolver = systemResolver,
    private readonly options: DirectDialerOptions = {},
  ) {}

  /** The same dial on a stream datapath; undefined when a test's `connect` must see it. */
  dialConn(target: HostPort, opts: DialOptions, datapath: StreamDatapath, done: DialedConnDone): DialInFlight | undefined {
    return this.options.connect ? undefined : dialSocket(target, opts, datapath, this.resolver, this.options.policy, this.options.clock ?? dialClock, done);
  }

  dial(target: HostPort, opts: DialOptions): Promise<DialedStream> {
    const where = formatHostPort(target.host, target.port);
    return new Promise<DialedStream>((resolve, reject) => {
      let socket: net.Socket | undefined;
      let settled = false;
      const finish = (err: SluiceError | undefined, remote?: Endpoint) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        opts.signal.removeEventListener('abort', onAbort);
        socket?.removeAllListeners('error').removeAllListeners('connect');
        if (err) {
          socket?.destroy();
          reject(err);
        } else {
          resolve({ stream: socket!, remote: remote! });
        }
      };
      const onAbort = () => finish(new SluiceError('SLUICE_ERR_CLOSED', `connect to ${where} aborted`));
      const timer = (this.options.clock ?? dialClock).setTimeout(
        () => finish(new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `connect to ${where} timed out after ${opts.timeoutMs}ms`)),
        opts.timeoutMs,
      );
      if (opts.signal.aborted) return onAbort();
      opts.signal.addEventListener('abort', onAbort, { once: true });
      resolveDestination(target, this.resolver, this.options.policy).then(
        (remote) => {
          if (settled) return;
          const s = (this.options.connect ?? net.connect)({ host: remote.address, port: remote.port, allowHalfOpen: true, noDelay: true });
          socket = s;
          s.once('error', (err) =>
            finish(new SluiceError('SLUICE_ERR_DIAL_FAILED', `connect to ${formatHostPort(remote.address, remote.port)} failed: ${errnoCode(err) ?? err.message}`, { cause: err })),
          );
          s.once('connect', () => finish(undefined, remote));
        },
        (err: SluiceError) => finish(err),
      );
    });
  }
}
