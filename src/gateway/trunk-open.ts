import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { SluiceError } from '../core/errors.js';
import type { DialOptions } from '../upstream/dialer.js';
import type { StreamMux } from '../upstream/agent/stream-mux.js';
import { TrunkConnStream } from '../upstream/agent/trunk-conn-stream.js';
import type { LinkTrunk } from './trunks.js';
import type { GatewayCounters } from './counters.js';

/**
 * Opens a public client's stream on trunk `t` (AgentLink.openStreamEarly): the stream id is
 * expected on the trunk, then STREAM_OPEN names the trunk's counter on the multiplexed channel
 * `mux`; a trunk gone by the answer falls back to a multiplexed stream. `ended` runs once when the
 * trunk is done with the stream (the link's count of streams off the control connection).
 */
export function openOnTrunk(
  host: { readonly clock: Clock; readonly counters: GatewayCounters }, mux: StreamMux, t: LinkTrunk,
  serviceId: number, client: Endpoint, server: Endpoint, opts: DialOptions,
  settled: (err?: SluiceError) => void, ended: () => void,
): Duplex {
  let stream: TrunkConnStream | undefined;
  const fallback = (done: (err?: SluiceError) => void) => mux.openEarly(serviceId, client, server, opts.timeoutMs, done);
  const cancel = mux.openOnData(serviceId, client, server, t.counter, opts.timeoutMs, (err) => stream!.answered(err), (id) => {
    // A trunk that died since it was picked refuses; the attach at the answer then falls back.
    stream = new TrunkConnStream(host.clock, t.trunk, id, fallback, settled, ended, (how) => void (how === 'attached' ? host.counters.trunkStreams++ : how === 'fallback' ? host.counters.trunkFallbacks++ : host.counters.trunkNoReady++));
    const s = stream;
    if (!t.trunk.expect(id, (alive) => s.readied(alive))) s.readied(false);
  });
  stream!.cancel = cancel;
  return stream!;
}
