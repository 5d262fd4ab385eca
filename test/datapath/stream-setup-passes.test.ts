import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { nativeOnly } from './stream-datapaths.js';
import { EAGAIN, heldFront } from './stream-front.js';
import { isHeldConn } from '../../src/listen/held-proxy-header.js';

// Connection setup in one wake-up of the native stream engine (docs/datapath.md, "Connection
// setup in one wake-up"): when the batch it delivered started a dial or a pair, the engine looks
// at its set again before returning to the event loop, so a loopback dial's outcome, the join and
// the client's first bytes follow in the same wake-up instead of one loop iteration each.
const { skip, datapath: nativeDp } = nativeOnly();

test('native stream engine: a pair joined in a batch moves the client bytes waiting before the event loop turns', { skip }, async (t) => {
  const dp = nativeDp();
  const { upstream, upstreams, front, client } = await heldFront(t, dp, 'hello');

  // The dial is answered in a batch, the pair joined in its callback; what the upstream holds is
  // looked at from setImmediate, which runs before the event loop polls again.
  const seen = await new Promise<{ n: number; bytes: string }>((resolve, reject) => {
    dp.dial(upstream.local, 2000, (err, up) => {
      if (err) return reject(err);
      const stop = dp.pipe(front, up!, 0, () => {});
      if (!stop) return reject(new Error('the pair was not joined in the datapath'));
      t.after(() => void stop());
      setImmediate(() => {
        const held = upstreams[0];
        if (!held || !isHeldConn(held)) return reject(new Error('the upstream listener had not accepted in the same batch'));
        const buf = Buffer.alloc(64);
        const n = held.read(buf);
        resolve({ n, bytes: n > 0 ? buf.subarray(0, n).toString() : '' });
      });
    });
  });
  assert.notEqual(seen.n, EAGAIN, 'the client bytes had not moved when the event loop turned');
  assert.deepEqual(seen, { n: 5, bytes: 'hello' });

  // The pair goes on relaying both ways afterwards.
  const held = upstreams[0]!;
  assert.equal(held.writeFirst(Buffer.from('world')), true);
  client.setEncoding('utf8');
  const [back] = (await once(client, 'data')) as [string];
  assert.equal(back, 'world');
});
