import type { Clock } from '../core/clock.js';
import type { StreamConn } from '../datapath/stream-datapath.js';
import { DATA_HELLO_BYTES, readDataHello } from '../protocol/tunnel/index.js';
import { readConnPrefix } from './conn-prefix.js';
import type { GatewayCounters } from './counters.js';
import type { DataConnRefusal, LinkDataConns } from './data-conns.js';

/**
 * How long the gateway waits for the agent's next hello on a data connection whose stream ended
 * cleanly. The agent writes it as soon as it has read the gateway's END, so only a lost or stalled
 * agent takes this long.
 */
export const NEXT_HELLO_TIMEOUT_MS = 10_000;

/**
 * A data connection back from a stream that ended with END both ways (docs/tunnel-protocol.md,
 * "Reuse"): reads the agent's next hello within NEXT_HELLO_TIMEOUT_MS and checks it exactly as a
 * new connection's (token, replay window, HELLO record under the new counter's key; the token must
 * be `conns`' own), then keeps it idle again. Closed when the agent closes it instead (its pool was
 * full), on a refusal (counted by reason) and at the deadline (`timeout`). Closed with `conns`.
 */
export function returnDataConn(conn: StreamConn, conns: LinkDataConns, clock: Clock, counters: GatewayCounters): void {
  let expired = false;
  let fire!: () => void;
  const deadline = new Promise<void>((resolve) => (fire = resolve));
  const timer = clock.setTimeout(() => {
    expired = true;
    fire();
  }, NEXT_HELLO_TIMEOUT_MS);
  conns.returning.add(conn);
  void readConnPrefix(conn, DATA_HELLO_BYTES, deadline).then((bytes) => {
    timer.cancel();
    fire();
    conns.returning.delete(conn);
    // Without bytes and before the deadline: the agent closed it (not a refusal).
    const refusal = bytes ? readmit(bytes, conns, conn) : expired ? 'timeout' : 'closed';
    if (refusal === undefined) {
      counters.dataConnReused++;
      return;
    }
    if (refusal !== 'closed') counters.dataConnRefused[refusal]++;
    conn.destroy();
  });
}

function readmit(bytes: Buffer, conns: LinkDataConns, conn: StreamConn): DataConnRefusal | undefined {
  let hello;
  try {
    hello = readDataHello(bytes);
  } catch {
    return 'bad-hello';
  }
  return hello.token.equals(conns.token) ? conns.admit(hello, conn) : 'unknown-token';
}
