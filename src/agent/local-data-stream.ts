import type { Socket } from 'node:net';
import type { HostPort } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { ExposeConfig } from '../config/expose-config.js';
import { relaySealed } from '../datapath/sealed-relay.js';
import type { PairCounters, PairEnd, StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';
import { jsStreamConn } from '../datapath/js-stream-datapath.js';
import { encodeDataReady, type StreamOpen, type StreamResetCode } from '../protocol/tunnel/index.js';
import type { DialOptions, StreamDialer } from '../upstream/dialer.js';
import { isSocketDialer } from '../upstream/direct/socket-dial.js';
import type { AgentDataConn } from './data-conn-pool.js';
import { proxyHeader, resetCodeFor } from './local-stream.js';

/** A dial's signal that never aborts (the dial ends by its own deadline). */
const NEVER = new AbortController().signal;

/**
 * After a failed dial, the data connection stays open this long (the gateway closes it first when
 * the STREAM_RESET arrives), so the reset on the control connection is what the gateway sees first
 * and the client gets a failed dial, not a truncated stream (docs/tunnel-protocol.md §5).
 */
const FAILED_DIAL_HOLD_MS = 2000;

/**
 * Answers STREAM_RESET `code` for a stream on data connection `d`, then closes `d` once the gateway
 * had time to read the reset first (FAILED_DIAL_HOLD_MS, or at shutdown).
 */
export function refuseDataStream(
  clock: Clock,
  d: AgentDataConn,
  code: StreamResetCode,
  answer: (reset?: StreamResetCode) => void,
  started: (stop: (reason: 'shutdown') => void) => void,
  ended: (stop: (reason: 'shutdown') => void) => void,
): void {
  answer(code);
  const close = () => {
    hold.cancel();
    d.conn.destroy();
    d.back?.(false);
    ended(close);
  };
  const hold = clock.setTimeout(close, FAILED_DIAL_HOLD_MS);
  started(close);
}

/**
 * One stream on a data connection at the agent (docs/tunnel-protocol.md, "Data connections"):
 * dials the local service on the stream datapath, writes the PROXY header when configured, writes
 * READY on the data connection and joins the two (pipeSealed, or the TypeScript relay), then
 * answers STREAM_ACCEPT; a
 * failed dial answers STREAM_RESET (refused, timeout, dial-failed) and closes the data connection.
 * `started` gets the pair's stop (for shutdown), `ended` when it is over.
 */
export function serveLocalDataStream(
  dialer: StreamDialer,
  datapath: StreamDatapath,
  clock: Clock,
  c: ExposeConfig,
  target: HostPort,
  m: StreamOpen,
  d: AgentDataConn,
  answer: (reset?: StreamResetCode) => void,
  started: (stop: (reason: 'shutdown') => void) => void,
  ended: (stop: (reason: 'shutdown') => void) => void,
): void {
  const failed = (err: unknown) => refuseDataStream(clock, d, resetCodeFor(err), answer, started, ended);
  const join = (local: StreamConn) => {
    const header = proxyHeader(c.proxyProtocol, m.client, m.server);
    if (header) local.writeFirst(header);
    // READY first (sequence 1): the gateway commits its client's bytes only once it has read it.
    d.conn.writeFirst(encodeDataReady(d.keys.sealKey, d.keys.sealIv, d.keys.sealSeq));
    const keys = { ...d.keys, sealSeq: d.keys.sealSeq + 1 };
    let stop: ((reason: 'shutdown') => void) | undefined;
    // A clean end (END both ways) keeps the data connection for the pool's next stream.
    const onEnd = (end: PairEnd) => {
      d.back?.(end.kept === true);
      if (stop) ended(stop);
    };
    const stopPair: () => PairCounters =
      datapath.pipeSealed(local, d.conn, keys, c.idleTimeoutMs, onEnd, true) ?? relaySealed(local.socket(), d.conn.socket(), keys, c.idleTimeoutMs, onEnd, true);
    stop = () => {
      stopPair();
      d.back?.(false);
      ended(stop!);
    };
    answer();
    started(stop);
  };
  const opts: DialOptions = { signal: NEVER, timeoutMs: c.connectTimeoutMs, client: m.client, local: m.server };
  if (isSocketDialer(dialer)) {
    const dialing = dialer.dialConn(target, opts, datapath, (err, dialed) => (err ? failed(err) : join(dialed!.conn)));
    if (dialing) return;
  }
  dialer.dial(target, opts).then(({ stream }) => join(jsStreamConn(stream as Socket)), failed);
}
