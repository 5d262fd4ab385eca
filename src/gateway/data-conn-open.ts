import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { SluiceError } from '../core/errors.js';
import type { DialOptions } from '../upstream/dialer.js';
import type { StreamMux } from '../upstream/agent/stream-mux.js';
import { DataConnStream } from '../upstream/agent/data-conn-stream.js';
import type { GatewayCounters } from './counters.js';
import type { IdleDataConn, LinkDataConns } from './data-conns.js';
import { returnDataConn } from './data-conn-return.js';
import { dataConnStart } from './data-conn-ready.js';

/**
 * Opens a public client's stream on `d`, an idle data connection taken from `conns`
 * (AgentLink.openStreamEarly): the OPEN is sent on the multiplexed channel `mux`, the bytes ride
 * `d`, a dead `d` falls back to a multiplexed stream, and a cleanly ended one goes back to `conns`.
 * `ended` runs once when the stream is done (the link's count of streams on data connections).
 */
export function openOnDataConn(
  host: { readonly clock: Clock; readonly counters: GatewayCounters },
  mux: StreamMux, conns: LinkDataConns, d: IdleDataConn,
  serviceId: number, client: Endpoint, server: Endpoint, opts: DialOptions,
  settled: (err?: SluiceError) => void, ended: () => void,
): Duplex {
  host.counters.dataConnStreams++;
  const stream = new DataConnStream(d.conn, d.keys, dataConnStart(host, (_why, done) => mux.openEarly(serviceId, client, server, opts.timeoutMs, done)), settled, ended, (conn) => returnDataConn(conn, conns, host.clock, host.counters));
  stream.cancel = mux.openOnData(serviceId, client, server, d.counter, opts.timeoutMs, (err) => stream.answered(err));
  return stream;
}
