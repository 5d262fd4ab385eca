import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { nativeOnly } from './stream-datapaths.js';
import type { StreamConn } from '../../src/datapath/stream-datapath.js';
import { tcpServer } from '../helpers/net.js';

// The native stream engine's connection table (docs/datapath.md, "Connection setup in one
// wake-up"): ids of closed connections are taken again once the batch that reported them was
// delivered. Every connection of a route is accepted and dialed inside a batch, so without that
// the table grew by two entries per connection for as long as the process ran.
const { skip, datapath: nativeDp } = nativeOnly();

test('native stream engine: 300 relayed connections one after another reuse the ids of the ended ones', { skip }, async (t) => {
  const dp = nativeDp();
  const up = await tcpServer(t, (s) => s.pipe(s).on('error', () => {}));
  let maxId = 0;
  let ended = 0;
  const idOf = (c: StreamConn) => (c as unknown as { id: number }).id;
  const listener = await dp.listen('127.0.0.1', 0, (down) => {
    // As a route does: dialed and joined from the batch that accepted the client.
    dp.dial({ address: '127.0.0.1', port: up.port, family: 4 }, 2000, (err, upConn) => {
      if (err) return down.destroy();
      maxId = Math.max(maxId, idOf(down), idOf(upConn!));
      if (!dp.pipe(down, upConn!, 0, () => void ended++)) throw new Error('not joined in the datapath');
    });
  });
  t.after(() => listener.close());

  const n = 300;
  for (let i = 0; i < n; i++) {
    const c = net.connect(listener.local.port, '127.0.0.1');
    c.end('x');
    const [got] = (await once(c, 'data')) as [Buffer];
    assert.equal(got.toString(), 'x');
    await once(c, 'close');
  }
  while (ended < n) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(maxId < 64, `the highest engine id after ${n} connections was ${maxId}: ended ones were not reused`);
});
