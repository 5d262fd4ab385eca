import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { nativeStreamCase } from './stream-datapaths.js';
import { isHeldConn } from '../../src/listen/held-proxy-header.js';
import type { StreamConn, StreamDatapath } from '../../src/datapath/stream-datapath.js';

// Connection setup in one wake-up of the native stream engine (docs/datapath.md, "Connection
// setup in one wake-up"): when the batch it delivered started a dial or a pair, the engine looks
// at its set again before returning to the event loop, so a loopback dial's outcome, the join and
// the client's first bytes follow in the same wake-up instead of one loop iteration each.
const nativeCase = nativeStreamCase();
const skip = nativeCase.skip ?? false;
const nativeDp = (): StreamDatapath => {
  if (!nativeCase.datapath) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs)');
  return nativeCase.datapath;
};

const EAGAIN = -11;

test('native stream engine: a pair joined in a batch moves the client bytes waiting before the event loop turns', { skip }, async (t) => {
  const dp = nativeDp();
  const upstreams: StreamConn[] = [];
  const upstream = await dp.listen('127.0.0.1', 0, (c) => upstreams.push(c));
  t.after(() => upstreams.forEach((c) => c.destroy()));
  let front: StreamConn | undefined;
  let accepted!: () => void;
  const frontAccepted = new Promise<void>((resolve) => (accepted = resolve));
  const listener = await dp.listen('127.0.0.1', 0, (c) => {
    front = c;
    accepted();
  });
  t.after(() => Promise.all([listener.close(), upstream.close()]));

  const client = net.connect(listener.local.port, '127.0.0.1');
  t.after(() => client.destroy());
  await once(client, 'connect');
  await new Promise<void>((resolve, reject) => client.write('hello', (err) => (err ? reject(err) : resolve())));
  await frontAccepted;

  // The dial is answered in a batch, the pair joined in its callback; what the upstream holds is
  // looked at from setImmediate, which runs before the event loop polls again.
  const seen = await new Promise<{ n: number; bytes: string }>((resolve, reject) => {
    dp.dial(upstream.local, 2000, (err, up) => {
      if (err) return reject(err);
      const stop = dp.pipe(front!, up!, 0, () => {});
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
