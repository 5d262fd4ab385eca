import type { Socket } from 'node:net';
import { canonicalIp, type Endpoint, type HostPort } from '../core/address.js';
import { errnoCode, isSluiceError } from '../core/errors.js';
import type { ExposeConfig } from '../config/expose-config.js';
import { jsStreamDatapath } from '../datapath/js-stream-datapath.js';
import type { StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';
import { relayConnToStream } from '../upstream/agent/conn-relay.js';
import { encodeProxyV1, encodeProxyV2 } from '../protocol/proxy-protocol/index.js';
import type { StreamOpen, StreamResetCode } from '../protocol/tunnel/index.js';
import { relayTcp } from '../session/tcp-relay.js';
import type { DialOptions, StreamDialer } from '../upstream/dialer.js';
import { isSocketDialer } from '../upstream/direct/socket-dial.js';
import type { TunnelStream } from '../upstream/agent/tunnel-stream.js';

/** A dial's signal that never aborts: a socket dial in flight is stopped with its `cancel` instead. */
const NEVER = new AbortController().signal;

/**
 * One stream from the gateway to an exposed TCP service: dials `target`, then accepts the stream,
 * writes the PROXY header when configured and relays with half-close and the service's idle
 * timeout; a failed dial resets the stream (refused, timeout, dial-failed). `started` gets the
 * relay's stop function (for shutdown); `ended` is called when that relay is over.
 *
 * A dialer of plain sockets (the usual one) dials with a callback, without a promise, an abort
 * controller or a timer of its own per stream (a literal's connect deadline is the socket's); a
 * stream closed while dialing cancels the dial, which closes what it dialed. Other dialers (tests
 * inject some) are dialed through their promise. With `datapath` native, the service is dialed
 * there and relayed without a Node socket (conn-relay.ts).
 */
export function serveLocalStream(
  dialer: StreamDialer,
  c: ExposeConfig,
  target: HostPort,
  stream: TunnelStream,
  m: StreamOpen,
  accept: (s: TunnelStream) => void,
  started: (stop: (reason: 'shutdown') => void) => void,
  ended: (stop: (reason: 'shutdown') => void) => void,
  datapath?: StreamDatapath,
): void {
  stream.on('error', () => {});
  // A datapath that relays its own connections (native) dials the service and carries its bytes
  // without a Node socket (conn-relay.ts); otherwise Node's net.
  const dp = datapath?.relayed ? datapath : jsStreamDatapath;
  const relay = (local: Socket) => {
    if (stream.destroyed) return void local.destroy();
    accept(stream);
    const header = proxyHeader(c.proxyProtocol, m.client, m.server);
    if (header) local.write(header);
    let stop: ((reason: 'shutdown') => void) | undefined;
    const done = () => stop && ended(stop);
    stop = stream.relaySocket(local, c.idleTimeoutMs, done) ?? relayTcp(local, stream, c.idleTimeoutMs, done);
    started(stop);
  };
  const relayConn = (local: StreamConn) => {
    if (stream.destroyed) return void local.destroy();
    if (!dp.relayed || !stream.idle) return relay(local.socket());
    let stop: ((reason: 'shutdown') => void) | undefined;
    const done = () => stop && ended(stop);
    stop = relayConnToStream(local, dp, stream, c.idleTimeoutMs, done, proxyHeader(c.proxyProtocol, m.client, m.server));
    if (!stop) return relay(local.socket());
    accept(stream);
    started(stop);
  };
  if (isSocketDialer(dialer)) {
    const opts: DialOptions = { signal: NEVER, timeoutMs: c.connectTimeoutMs, client: m.client, local: m.server };
    const onClose = () => dialing?.cancel();
    const dialing = dialer.dialConn(target, opts, dp, (err, dialed) => {
      stream.off('close', onClose);
      if (err) return stream.reset(resetCodeFor(err));
      relayConn(dialed!.conn);
    });
    if (dialing) {
      stream.once('close', onClose);
      return;
    }
  }
  const ac = new AbortController();
  const onClose = () => ac.abort();
  stream.once('close', onClose);
  dialer.dial(target, { signal: ac.signal, timeoutMs: c.connectTimeoutMs, client: m.client, local: m.server }).then(
    ({ stream: local }) => {
      stream.off('close', onClose);
      relay(local as Socket);
    },
    (err: unknown) => {
      stream.off('close', onClose);
      stream.reset(resetCodeFor(err));
    },
  );
}

export function proxyHeader(mode: 'off' | 'v1' | 'v2', client: Endpoint, server: Endpoint): Buffer | undefined {
  if (mode === 'off') return undefined;
  const addresses = { source: canon(client), destination: canon(server) };
  return mode === 'v1' ? encodeProxyV1(addresses) : encodeProxyV2({ transport: 'STREAM', addresses });
}

function canon(e: Endpoint): Endpoint {
  const ip = canonicalIp(e.address);
  return ip ? { address: ip.address, port: e.port, family: ip.family } : e;
}

export function resetCodeFor(err: unknown): StreamResetCode {
  if (isSluiceError(err, 'SLUICE_ERR_DIAL_TIMEOUT')) return 'timeout';
  const cause = isSluiceError(err) ? err.cause : err;
  return errnoCode(cause) === 'ECONNREFUSED' ? 'refused' : 'dial-failed';
}
