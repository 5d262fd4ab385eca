import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { nativeOnly } from './stream-datapaths.js';
import { EAGAIN, heldFront } from './stream-front.js';
import { isHeldConn } from '../../src/listen/held-proxy-header.js';
import type { PairEnd, StreamConn } from '../../src/datapath/stream-datapath.js';
import { waitFor } from '../helpers/net.js';

// A pair joined at connect moves the client's waiting bytes at once (docs/datapath.md, "First
// bytes at the join"): they are at the upstream before the batch that carries the dial's answer
// reaches JavaScript, not one look at the set later.
const { skip, datapath: nativeDp } = nativeOnly();

test('native stream engine: a pair joined at connect has sent the client bytes before its dial answer is delivered', { skip }, async (t) => {
  const dp = nativeDp();
  // The upstream's end is accepted in the look at the set that also finds the dial connected (the
  // connect finished inside the dial call), and reported before it: it was ready first.
  const { upstream, upstreams, front, client } = await heldFront(t, dp, 'hello');
  const ends: PairEnd[] = [];

  // What the upstream's end holds when the dial's answer is delivered.
  const seen = await new Promise<{ n: number; bytes: string }>((resolve, reject) => {
    dp.dial(
      upstream.local,
      2000,
      (err, up) => {
        if (err) return reject(err);
        if (up!.joined !== true) return reject(new Error('not joined at connect'));
        if (!dp.pipe(front, up!, 0, (e) => ends.push(e))) return reject(new Error('not joined in the datapath'));
        const held = upstreams[0];
        if (!held || !isHeldConn(held)) return reject(new Error('the upstream was not accepted in the batch of the dial answer'));
        const buf = Buffer.alloc(64);
        const n = held.read(buf);
        resolve({ n, bytes: n > 0 ? buf.subarray(0, n).toString() : '' });
      },
      { down: front, idleTimeoutMs: 0 },
    );
  });
  assert.notEqual(seen.n, EAGAIN, 'the client bytes had not moved when the dial answer was delivered');
  assert.deepEqual(seen, { n: 5, bytes: 'hello' });

  // The pair relays both ways afterwards, and ends once.
  const held = upstreams[0]!;
  assert.ok(isHeldConn(held));
  assert.equal(held.writeFirst(Buffer.from('world')), true);
  client.setEncoding('utf8');
  const [back] = (await once(client, 'data')) as [string];
  assert.equal(back, 'world');
  client.end();
  held.destroy();
  await waitFor(() => ends.length === 1, 'the pair ended');
});

test('native stream engine: a client that has sent nothing at the join is read when its bytes come', { skip }, async (t) => {
  const dp = nativeDp();
  const got: Buffer[] = [];
  const upstreamServer = net.createServer((s) => s.on('data', (d: Buffer) => got.push(d)));
  upstreamServer.listen(0, '127.0.0.1');
  await once(upstreamServer, 'listening');
  t.after(() => upstreamServer.close());
  const port = (upstreamServer.address() as net.AddressInfo).port;
  const ends: PairEnd[] = [];
  const joined: boolean[] = [];
  const listener = await dp.listen('127.0.0.1', 0, (down) => {
    dp.dial({ address: '127.0.0.1', port, family: 4 }, 2000, (err, up) => {
      if (err) return down.destroy();
      joined.push(up!.joined === true);
      if (!dp.pipe(down, up!, 0, (e) => ends.push(e))) throw new Error('not joined in the datapath');
    }, { down, idleTimeoutMs: 0 });
  });
  t.after(() => listener.close());

  const client = net.connect(listener.local.port, '127.0.0.1');
  t.after(() => client.destroy());
  await once(client, 'connect');
  await waitFor(() => joined.length === 1, 'joined');
  assert.deepEqual(joined, [true]);
  client.write('late');
  await waitFor(() => Buffer.concat(got).toString() === 'late', 'the late bytes reached the upstream');
  client.end();
  await waitFor(() => ends.length === 1, 'the pair ended');
  assert.equal(ends[0]!.bytesFromClient, 4);
});

// A client reset before its dial's answer: the pump at the join reads the reset, so the pair ends
// in the batch that carries the answer, right after it.
async function resetBeforeAnswer(t: import('node:test').TestContext, deferPipe: boolean): Promise<PairEnd[]> {
  const dp = nativeDp();
  const { upstream, front, client } = await heldFront(t, dp);
  client.resetAndDestroy();
  await once(client, 'close');
  const ends: PairEnd[] = [];
  const take = (up: StreamConn) => {
    if (!dp.pipe(front, up, 0, (e) => ends.push(e))) throw new Error('not joined in the datapath');
  };
  dp.dial(upstream.local, 2000, (err, up) => {
    if (err) throw err;
    assert.equal(up!.joined, true);
    if (deferPipe) setImmediate(() => take(up!));
    else take(up!);
  }, { down: front, idleTimeoutMs: 0 });
  await waitFor(() => ends.length === 1, 'the pair ended');
  await new Promise((resolve) => setImmediate(resolve));
  return ends;
}

test('native stream engine: a client reset before its dial answer ends the joined pair once, after the answer', { skip }, async (t) => {
  const ends = await resetBeforeAnswer(t, false);
  assert.deepEqual(ends.map((e) => [e.reason, e.bytesFromClient, e.bytesToClient]), [['client-error', 0, 0]]);
});

test('native stream engine: a joined pair that ended before `pipe` took note of the answer still reports its end once', { skip }, async (t) => {
  const ends = await resetBeforeAnswer(t, true);
  assert.deepEqual(ends.map((e) => [e.reason, e.bytesFromClient, e.bytesToClient]), [['client-error', 0, 0]]);
});
