import type { Socket } from 'node:net';
import type { HostPort } from '../core/address.js';
import type { ExposeConfig } from '../config/expose-config.js';
import type { StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';
import type { StreamTrunk } from '../datapath/stream-trunk.js';
import { jsStreamConn } from '../datapath/js-stream-datapath.js';
import type { StreamOpen, StreamResetCode } from '../protocol/tunnel/index.js';
import type { DialOptions, StreamDialer } from '../upstream/dialer.js';
import { isSocketDialer } from '../upstream/direct/socket-dial.js';
import { proxyHeader, resetCodeFor } from './local-stream.js';

/** A dial's signal that never aborts (the dial ends by its own deadline). */
const NEVER = new AbortController().signal;

type Stop = (reason: 'shutdown') => void;

/**
 * One stream on a trunk at the agent (docs/tunnel-protocol.md, "Trunks"): dials the local service
 * on the stream datapath, writes the PROXY header when configured, attaches the connection to
 * `trunk` as stream `m.streamId`, then answers STREAM_ACCEPT; a failed dial answers STREAM_RESET
 * (refused, timeout, dial-failed). A trunk that is gone by then (or a local connection the engine
 * cannot attach) answers STREAM_RESET(internal): the gateway opens the same client multiplexed.
 * `started` gets the stream's stop (shutdown, the gateway's cancel), `ended` when it is over.
 */
export function serveLocalTrunkStream(
  dialer: StreamDialer,
  datapath: StreamDatapath,
  c: ExposeConfig,
  target: HostPort,
  m: StreamOpen,
  trunk: StreamTrunk,
  answer: (reset?: StreamResetCode) => void,
  started: (stop: Stop) => void,
  ended: (stop: Stop) => void,
): void {
  const refuse = (code: StreamResetCode) => {
    answer(code);
    ended(() => {});
  };
  const join = (local: StreamConn) => {
    const header = proxyHeader(c.proxyProtocol, m.client, m.server);
    if (header) local.writeFirst(header);
    let stop: Stop | undefined;
    const stopStream = trunk.attach(m.streamId, local, c.idleTimeoutMs, false, () => {
      if (stop) ended(stop);
    });
    if (!stopStream) {
      local.destroy();
      return refuse('internal');
    }
    stop = () => {
      stopStream();
      ended(stop!);
    };
    answer();
    started(stop);
  };
  const opts: DialOptions = { signal: NEVER, timeoutMs: c.connectTimeoutMs, client: m.client, local: m.server };
  if (isSocketDialer(dialer)) {
    const dialing = dialer.dialConn(target, opts, datapath, (err, dialed) => (err ? refuse(resetCodeFor(err)) : join(dialed!.conn)));
    if (dialing) return;
  }
  dialer.dial(target, opts).then(({ stream }) => join(jsStreamConn(stream as Socket)), (err: unknown) => refuse(resetCodeFor(err)));
}
