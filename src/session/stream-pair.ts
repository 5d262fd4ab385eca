import type { StreamConn, StreamDatapath } from '../datapath/stream-datapath.js';
import type { EndReason } from '../observe/events.js';
import type { RelayOutcome } from './tcp-relay.js';

/**
 * Joins a client and an upstream connection inside the stream datapath (no bytes through
 * JavaScript), with relayTcp's contract: FIN forwarded as FIN, bounded buffering, the idle
 * timeout, `onDone` called once with the reason and counters. Returns relayTcp's `stop`, or
 * undefined when the datapath cannot join these two (the caller relays them as sockets).
 */
export function joinInDatapath(
  datapath: StreamDatapath,
  down: StreamConn,
  up: StreamConn,
  idleTimeoutMs: number,
  onDone: (outcome: RelayOutcome) => void,
): ((reason: EndReason) => void) | undefined {
  let done = false;
  const stopPair = datapath.pipe(down, up, idleTimeoutMs, (end) => {
    if (done) return;
    done = true;
    onDone(end); // a PairEnd is a RelayOutcome (its reasons are a subset)
  });
  if (!stopPair) return undefined;
  return (reason) => {
    if (done) return;
    done = true;
    const c = stopPair();
    // As with relayTcp, the outcome follows the stop instead of running inside it.
    queueMicrotask(() => onDone({ reason, bytesFromClient: c.bytesFromClient, bytesToClient: c.bytesToClient }));
  };
}
