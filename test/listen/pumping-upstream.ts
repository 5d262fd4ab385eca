import type { TestContext } from 'node:test';
import { tcpServer } from '../helpers/net.js';

/**
 * A TCP upstream that sends `total` bytes to each connection as fast as the connection takes
 * them (it waits for 'drain'), then a FIN. `sent()` is how far it got: a stalled reader must
 * hold it well below `total`.
 */
export async function pumpingUpstream(t: TestContext, total: number, chunkBytes: number) {
  let sent = 0;
  const up = await tcpServer(t, (s) => {
    const chunk = Buffer.alloc(chunkBytes, 7);
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  return { ...up, sent: () => sent };
}
