import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { perDatapath } from '../datapath/datapaths.js';
import { waitFor } from '../helpers/net.js';
import type { UdpRoute } from '../../src/listen/udp-route.js';

// A flood is isolated as soon as the batch sees it fill the listener's share (udp-isolation.ts
// HEAVY_DATAGRAMS) and it was read more than a sweep's worth since the last sweep, not only at the
// sweep; the reason says which decided. On the js datapath nothing is isolated.
const { test, startNode, datapathOf } = perDatapath();

/** An echo upstream with a large receive buffer; `got.n` counts what reached it. */
async function echo(t: TestContext): Promise<{ port: number; got: { n: number } }> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  const got = { n: 0 };
  s.on('message', (m, r) => {
    got.n++;
    s.send(m, r.port, r.address);
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return { port: s.address().port, got };
}

/** A client socket that has been answered once (its session is open), then closed: its port is free for the child. */
async function openedSession(t: TestContext, port: number): Promise<number> {
  const c = dgram.createSocket('udp4');
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  const answered = once(c, 'message');
  c.send('hello', port, '127.0.0.1');
  await answered;
  const own = c.address().port;
  c.close();
  return own;
}

/** From a child while this process's loop is blocked: `n` datagrams from `floodPort`, then 3 from `lightPort`. */
function burstWhileBlocked(port: number, floodPort: number, lightPort: number, n: number): void {
  const script = `
    const dgram = require('node:dgram');
    const buf = Buffer.alloc(64);
    const f = dgram.createSocket('udp4'), l = dgram.createSocket('udp4');
    let left = ${n + 3}, bound = 0;
    const done = () => { if (--left === 0) { f.close(); l.close(); } };
    const go = () => {
      if (++bound < 2) return;
      for (let i = 0; i < ${n}; i++) f.send(buf, ${port}, '127.0.0.1', done);
      for (let i = 0; i < 3; i++) l.send(buf, ${port}, '127.0.0.1', done);
    };
    f.bind(${floodPort}, '127.0.0.1', go);
    l.bind(${lightPort}, '127.0.0.1', go);
  `;
  // Bounded; generous, since the child starts while this machine may be busy (the burst itself takes milliseconds).
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 30_000, encoding: 'utf8' });
  assert.equal(r.status, 0, `the burst's sender: status ${r.status}, signal ${r.signal}, ${r.stderr}`);
}

/** A route `game` to an echo upstream (its `got` counts what reached it), every rate limit lifted. */
async function gameRoute(t: TestContext, isolateAbove: number) {
  const { port: echoPort, got } = await echo(t);
  const { node, port, ofType } = await startNode(t, `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echoPort}
    udp: { idleTimeout: 30s, isolateAbove: ${isolateAbove}, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }
`);
  return { got, node, port, ofType, route: node.route('game') as unknown as UdpRoute };
}

for (const above of [1000, 0]) {
  const what = above > 0 ? 'gets its own socket at once (reason heavy-source), a light one does not' : 'keeps the shared socket (isolation off)';
  test(`udp isolation (isolateAbove ${above}): a client that fills the listener's share of the batch ${what}`, async (t) => {
    const native = datapathOf(t)?.kind === 'native';
    const { got, node, port, ofType, route } = await gameRoute(t, above);
    const flooder = await openedSession(t, port('game'));
    const light = await openedSession(t, port('game'));
    burstWhileBlocked(port('game'), flooder, light, 1500);
    // Everything queued is read and forwarded (the listener's queue holds the burst; decisions are
    // taken as it is read, before what follows is forwarded).
    await waitFor(() => got.n === 2 + 1503, 'the burst forwarded');
    const isolated = ofType('udp-isolation').filter((e) => e.change === 'isolated');
    const kernelDrops = () => ofType('datagrams-dropped').filter((e) => e.reason === 'isolated-kernel').reduce((n, e) => n + e.count, 0);
    if (native && above > 0) {
      assert.deepEqual(isolated.map((e) => [e.client.port, e.reason]), [[flooder, 'heavy-source']]);
      assert.equal(route.isolated, 1);
      // Its own socket holds a stall's backlog as the listener did (ISOLATED_RCVBUF_BYTES): of
      // 1200 queued while the loop is blocked none is dropped (it is made smaller only once it
      // sends more than twice what is read: the test below).
      burstWhileBlocked(port('game'), flooder, light, 1200);
      await waitFor(() => got.n === 1505 + 1203, 'the second burst forwarded, whole');
      assert.equal(kernelDrops(), 0);
    } else {
      assert.deepEqual(isolated, [], native ? 'isolateAbove 0: off' : 'the js datapath never isolates');
      assert.equal(route.isolated, 0);
    }
    assert.equal(route.active, 2, 'both sessions live');
    assert.equal(ofType('session-ended').length, 0, 'no session ended');
  });
}

test('udp isolation: a client isolated for its rate alone keeps the listener\'s buffer (a stall\'s backlog gets through whole) until it sends more than twice what is read, then its excess is dropped early', async (t) => {
  const native = datapathOf(t)?.kind === 'native';
  const { got, port, ofType, route } = await gameRoute(t, 200);
  const client = await openedSession(t, port('game'));
  const light = await openedSession(t, port('game'));
  const kernelDrops = () => ofType('datagrams-dropped').filter((e) => e.reason === 'isolated-kernel').reduce((n, e) => n + e.count, 0);
  // Paced at 1000/s (5 times isolateAbove), from its own port: isolated at a sweep, for its rate.
  const c = dgram.createSocket('udp4');
  c.bind(client, '127.0.0.1');
  await once(c, 'listening');
  let paced = 0;
  const tick = setInterval(() => {
    for (let i = 0; i < 10; i++, paced++) c.send(Buffer.alloc(64), port('game'), '127.0.0.1');
  }, 10);
  try {
    if (native) await waitFor(() => route.isolated === 1, 'isolated for its rate', 5000);
    else await new Promise((r) => setTimeout(r, 600));
  } finally {
    clearInterval(tick);
  }
  const sent = 2 + paced;
  await waitFor(() => got.n === sent, 'the paced datagrams forwarded');
  c.close();
  if (!native) {
    assert.equal(ofType('udp-isolation').length, 0, 'the js datapath never isolates');
    return;
  }
  assert.deepEqual(ofType('udp-isolation').map((e) => [e.client.port, e.change, e.reason]), [[client, 'isolated', 'over-rate']]);
  // A stall's backlog (1200 queued while the loop is blocked) at its own socket gets through whole.
  burstWhileBlocked(port('game'), client, light, 1200);
  await waitFor(() => got.n === sent + 1203, 'the backlog forwarded, whole');
  assert.equal(kernelDrops(), 0);
  // 8000 queued: more than the listener's buffer holds, most dropped at its own socket, more than
  // were read: a flood after all. Its buffer shrinks at the next sweep, so of the next 1200 queued
  // while blocked the kernel drops most, early.
  burstWhileBlocked(port('game'), client, light, 8000);
  await waitFor(() => got.n - sent - 1203 + kernelDrops() === 8003, 'the flood forwarded or counted as dropped');
  const before = { got: got.n, drops: kernelDrops() };
  assert.ok(before.drops > before.got - sent - 1203, `dropped ${before.drops}, read ${before.got - sent - 1203}`);
  await new Promise((r) => setTimeout(r, 600)); // past the next sweep (250 ms), which reads the drops and shrinks the buffer
  burstWhileBlocked(port('game'), client, light, 1200);
  await waitFor(() => got.n - before.got + kernelDrops() - before.drops === 1203, 'the next backlog forwarded or counted as dropped');
  assert.ok(kernelDrops() - before.drops > 600, `dropped early: ${kernelDrops() - before.drops} of 1200`);
  assert.equal(route.isolated, 1);
});

test('udp isolation: a light client\'s backlog after a stall of the process fills the listener\'s share too, but under the rate it keeps the shared socket', async (t) => {
  const native = datapathOf(t)?.kind === 'native';
  // isolateAbove 10,000/s: 2,500 a sweep; 600 queued while the loop is blocked are a backlog, not a rate.
  const { got, port, ofType, route } = await gameRoute(t, 10_000);
  const client = await openedSession(t, port('game'));
  const light = await openedSession(t, port('game'));
  burstWhileBlocked(port('game'), client, light, 600);
  await waitFor(() => got.n === 2 + 603, 'the backlog forwarded');
  assert.deepEqual(ofType('udp-isolation'), [], native ? 'a backlog is not a rate' : 'the js datapath never isolates');
  assert.equal(route.isolated, 0);
});
