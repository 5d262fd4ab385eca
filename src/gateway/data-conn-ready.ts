import type { Duplex } from 'node:stream';
import type { Clock } from '../core/clock.js';
import type { SluiceError } from '../core/errors.js';
import type { SealedKeys, StreamConn } from '../datapath/stream-datapath.js';
import type { DataConnDeath, DataConnStart } from '../upstream/agent/data-conn-stream.js';
import type { SocketRelaying } from '../upstream/dialer.js';
import type { GatewayCounters } from './counters.js';
import { DATA_READY_BYTES, verifyDataReady } from '../protocol/tunnel/index.js';
import { readConnPrefix } from './conn-prefix.js';

/**
 * Reads the agent's READY off data connection `conn` (docs/tunnel-protocol.md, "Data connections"),
 * never more than its 20 bytes: 'ready' when it opens under the agent->gateway key at `keys.openSeq`;
 * 'forged' when they are something else; 'closed' when the connection ended or failed first;
 * undefined when `expired` resolved first.
 */
export async function readDataReady(conn: StreamConn, keys: SealedKeys, expired: Promise<void>): Promise<'ready' | 'closed' | 'forged' | undefined> {
  let over = false;
  void expired.then(() => (over = true));
  const buf = await readConnPrefix(conn, DATA_READY_BYTES, expired);
  if (!buf) return over ? undefined : 'closed';
  return verifyDataReady(buf, keys.openKey, keys.openIv, keys.openSeq) ? 'ready' : 'forged';
}

/** A stream's start on a data connection (DataConnStream): READY read here, a dead connection counted, then `open` multiplexed. */
export function dataConnStart(
  host: { readonly clock: Clock; readonly counters: GatewayCounters },
  open: (why: DataConnDeath, settled: (err?: SluiceError) => void) => Duplex & SocketRelaying,
): DataConnStart {
  return {
    clock: host.clock,
    readReady: readDataReady,
    fallback: (why, settled) => {
      host.counters.dataConnDead[why]++;
      return open(why, settled);
    },
  };
}
