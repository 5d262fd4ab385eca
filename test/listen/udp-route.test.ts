import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { ManualClock } from '../helpers/manual-clock.js';
import { perDatapath } from '../datapath/datapaths.js';
import { freePort, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';
import type { DatagramChannel, DatagramDialer, DatagramReceiver, DialOptions } from '../../src/upstream/dialer.js';
import type { HostPort } from '../../src/core/address.js';

// Every test here runs once per UDP datapath (js, native).
const { test, startNode, datapathOf } = perDatapath();

const route = (upstream: number, extra = '') => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
${extra}
`;

test('udp route: several clients each get their own session, upstream socket and replies', async (t) => {
  const echo = await udpEcho(t, { prefix: 'echo:' });
  const { node, port, ofType } = await startNode(t, route(echo.port));
  const clients = await Promise.all([udpClient(t), udpClient(t), udpClient(t)]);
  for (let round = 0; round < 3; round++) {
    clients.forEach((c, i) => c.send(port('game'), `c${i}-r${round}`));
    for (const [i, c] of clients.entries()) assert.equal((await c.next()).toString(), `echo:c${i}-r${round}`);
  }
  assert.equal(node.route('game')!.active, 3);
  assert.equal(echo.sources.size, 3, 'each session has its own upstream source port');
  const started = ofType('session-started');
  assert.equal(started.length, 3);
  assert.deepEqual(new Set(started.map((e) => e.flow.client.port)), new Set(clients.map((c) => c.port)));
  const info = node.route('game')!.sessions().find((s) => s.client.port === clients[0]!.port)!;
  assert.equal(info.packetsFromClient, 3);
  assert.equal(info.packetsToClient, 3);
  assert.equal(info.bytesFromClient, 'c0-r0'.length * 3);
  assert.equal(info.bytesToClient, 'echo:c0-r0'.length * 3);
});

test('udp route: idle sessions expire after idleTimeout counted from traffic in either direction', async (t) => {
  const clock = new ManualClock();
  const echo = await udpEcho(t);
  const { node, port, ofType } = await startNode(t, route(echo.port, '    udp: { idleTimeout: 10s }'), { clock });
  const c = await udpClient(t);
  c.send(port('game'), 'hello');
  await c.next();
  clock.advance(9_000);
  assert.equal(node.route('game')!.active, 1);
  clock.advance(900);
  assert.equal(node.route('game')!.active, 1, 'not expired before 10 s');
  c.send(port('game'), 'again');
  await c.next();
  clock.advance(9_900);
  assert.equal(node.route('game')!.active, 1, 'traffic reset the idle timer');
  clock.advance(600);
  assert.equal(node.route('game')!.active, 0, 'expired within [T, T + 2 sweeps)');
  const ended = ofType('session-ended');
  assert.equal(ended.length, 1);
  assert.equal(ended[0]!.reason, 'idle-timeout');
  assert.equal(ended[0]!.counters.packetsFromClient, 2);
  assert.equal(ended[0]!.counters.packetsToClient, 2);
});

test('udp route: idleTimeout 0s means never (as for TCP): a silent session stays until something else ends it', async (t) => {
  const clock = new ManualClock();
  const echo = await udpEcho(t);
  const { node, port, ofType } = await startNode(t, route(echo.port, '    udp: { idleTimeout: 0s }'), { clock });
  const c = await udpClient(t);
  c.send(port('game'), 'hello');
  await c.next();
  for (let i = 0; i < 10; i++) clock.advance(3_600_000);
  assert.equal(node.route('game')!.active, 1, 'still open after 10 silent hours');
  assert.equal(ofType('session-ended').length, 0);
  c.send(port('game'), 'again');
  assert.equal((await c.next()).toString(), 'again');
  assert.equal(ofType('session-started').length, 1, 'the same session carried it');
});

test('udp route: replies from the upstream alone keep a session alive', async (t) => {
  const clock = new ManualClock();
  const echo = await udpEcho(t);
  const { node, port } = await startNode(t, route(echo.port, '    udp: { idleTimeout: 1s }'), { clock });
  const c = await udpClient(t);
  c.send(port('game'), 'x');
  await c.next();
  const upstreamSource = [...echo.sources][0]!;
  for (let i = 0; i < 5; i++) {
    clock.advance(800);
    echo.socket.send(`tick${i}`, upstreamSource, '127.0.0.1');
    assert.equal((await c.next()).toString(), `tick${i}`);
  }
  assert.equal(node.route('game')!.active, 1, 'upstream-only traffic counts as activity');
  clock.advance(1_300);
  assert.equal(node.route('game')!.active, 0);
});

test('udp route: the session cap rejects new clients, or evicts the least recently used one', async (t) => {
  const echo = await udpEcho(t);
  const clock = new ManualClock();
  const reject = await startNode(t, route(echo.port, '    udp: { maxSessions: 2 }'), { clock });
  const evict = await startNode(t, route(echo.port, '    udp: { maxSessions: 2, onLimit: evict-lru }'), { clock });
  for (const [mode, n] of [['reject', reject], ['evict', evict]] as const) {
    const [a, b, c] = await Promise.all([udpClient(t), udpClient(t), udpClient(t)]);
    a.send(n.port('game'), 'a');
    await a.next();
    clock.advance(300); // a is now older than b
    b.send(n.port('game'), 'b');
    await b.next();
    c.send(n.port('game'), 'c');
    if (mode === 'reject') {
      await waitFor(() => n.ofType('session-rejected').length === 1, 'rejection');
      assert.equal(n.ofType('session-rejected')[0]!.reason, 'limit-route-sessions');
      await assert.rejects(c.next(200));
      assert.equal(n.node.route('game')!.active, 2);
    } else {
      assert.equal((await c.next()).toString(), 'c');
      const ended = n.ofType('session-ended');
      assert.equal(ended.length, 1);
      assert.equal(ended[0]!.reason, 'evicted');
      assert.equal(ended[0]!.flow.client.port, a.port, 'the least recently used client was evicted');
      assert.equal(n.node.route('game')!.active, 2);
    }
  }
});

test('udp route: per-source cap and creation rate limits (route and source) on the injected clock', async (t) => {
  // A silent upstream: the rates count sessions nobody has answered (an answer gives the tokens back).
  const silent = await udpSilent(t);
  const clock = new ManualClock();
  const n = await startNode(
    t,
    route(silent.port, '    udp: { maxSessionsPerSource: 3, rate: { perSecond: 1, burst: 2 }, ratePerSource: { perSecond: 0 } }'),
    { clock },
  );
  const cs = await Promise.all([udpClient(t), udpClient(t), udpClient(t), udpClient(t)]);
  cs[0]!.send(n.port('game'), '0');
  cs[1]!.send(n.port('game'), '1');
  await waitFor(() => n.ofType('session-started').length === 2, 'two sessions');
  cs[2]!.send(n.port('game'), '2');
  await waitFor(() => n.ofType('session-rejected').length === 1, 'rate rejection');
  assert.equal(n.ofType('session-rejected')[0]!.reason, 'limit-route-rate');
  clock.advance(1000); // one token back
  cs[2]!.send(n.port('game'), '2');
  await waitFor(() => n.ofType('session-started').length === 3, 'the third session after a refill');
  clock.advance(1000);
  cs[3]!.send(n.port('game'), '3');
  await waitFor(() => n.ofType('session-rejected').length === 2, 'source cap rejection');
  assert.equal(n.ofType('session-rejected')[1]!.reason, 'limit-source-sessions', 'all four clients share 127.0.0.1');
  assert.equal(n.node.route('game')!.active, 3);

  const m = await startNode(t, route(silent.port, '    udp: { ratePerSource: { perSecond: 1, burst: 1 } }'), { clock });
  const [x, y] = await Promise.all([udpClient(t), udpClient(t)]);
  x.send(m.port('game'), 'x');
  await waitFor(() => m.ofType('session-started').length === 1, 'first session');
  y.send(m.port('game'), 'y');
  await waitFor(() => m.ofType('session-rejected').length === 1, 'source rate rejection');
  assert.equal(m.ofType('session-rejected')[0]!.reason, 'limit-source-rate');
});

/** A UDP upstream on 127.0.0.1:0 that never answers. */
async function udpSilent(t: TestContext) {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return { port: sock.address().port };
}

/** A dialer whose opens wait until `release()`; everything else is the real direct dialer. */
function gatedDialer(t: TestContext) {
  const real = new DirectDatagramDialer(undefined, datapathOf(t));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const dialer: DatagramDialer = {
    async open(target: HostPort, receiver: DatagramReceiver, opts: DialOptions): Promise<DatagramChannel> {
      await gate;
      return real.open(target, receiver, opts);
    },
  };
  return { dialer, release };
}

test('udp route: datagrams that arrive while the session opens are queued and delivered in order', async (t) => {
  const echo = await udpEcho(t);
  const { dialer, release } = gatedDialer(t);
  const n = await startNode(t, route(echo.port), { datagramDialer: dialer });
  const c = await udpClient(t);
  for (let i = 0; i < 5; i++) c.send(n.port('game'), `m${i}`);
  await waitFor(() => n.node.route('game')!.sessions()[0]?.packetsFromClient === 5, 'five datagrams received');
  assert.equal(echo.received, 0, 'nothing reaches the upstream before the session is open');
  release();
  const got = [];
  for (let i = 0; i < 5; i++) got.push((await c.next()).toString());
  assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);
});

test('udp route: by default a whole batch (128 datagrams) that arrives while the session opens is held and delivered', async (t) => {
  const echo = await udpEcho(t);
  const { dialer, release } = gatedDialer(t);
  const n = await startNode(t, route(echo.port), { datagramDialer: dialer });
  const c = await udpClient(t);
  for (let i = 0; i < 128; i++) c.send(n.port('game'), `m${i}`);
  await waitFor(() => n.node.route('game')!.sessions()[0]?.packetsFromClient === 128, '128 datagrams received');
  release();
  const got = new Set<string>();
  for (let i = 0; i < 128; i++) got.add((await c.next()).toString());
  assert.equal(got.size, 128, 'every datagram of the burst came back');
});

test('udp route: the set-up queue is bounded and overflow is counted', async (t) => {
  const echo = await udpEcho(t);
  const { dialer, release } = gatedDialer(t);
  const clock = new ManualClock();
  const n = await startNode(t, route(echo.port, '    udp: { setupQueue: 3 }'), { datagramDialer: dialer, clock });
  const c = await udpClient(t);
  for (let i = 0; i < 6; i++) c.send(n.port('game'), `m${i}`);
  await waitFor(() => n.node.route('game')!.sessions()[0]?.packetsFromClient === 6, 'six datagrams received');
  release();
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await c.next()).toString());
  assert.deepEqual(got, ['m0', 'm1', 'm2']);
  await assert.rejects(c.next(200));
  clock.advance(300); // a sweep flushes drop counters into the event stream
  const drops = n.ofType('datagrams-dropped');
  assert.deepEqual(drops.map((d) => [d.reason, d.count]), [['setup-queue-full', 3]]);
});

test('udp route: the largest IPv4 datagram is forwarded whole; larger than maxDatagramBytes is dropped and counted', async (t) => {
  const echo = await udpEcho(t);
  const clock = new ManualClock();
  const n = await startNode(t, route(echo.port), { clock });
  const c = await udpClient(t);
  c.socket.setSendBufferSize(1 << 20);
  c.socket.setRecvBufferSize(1 << 20);
  const big = Buffer.alloc(65507);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  c.send(n.port('game'), big);
  const back = await c.next();
  assert.equal(back.length, 65507);
  assert.ok(back.equals(big));

  const small = await startNode(t, route(echo.port, '    udp: { maxDatagramBytes: 1000 }'), { clock });
  const d = await udpClient(t);
  d.send(small.port('game'), Buffer.alloc(1000, 1));
  assert.equal((await d.next()).length, 1000);
  d.send(small.port('game'), Buffer.alloc(1001, 2));
  await assert.rejects(d.next(200));
  clock.advance(300);
  assert.deepEqual(small.ofType('datagrams-dropped').map((x) => [x.reason, x.count]), [['too-big', 1]]);
  const s = small.node.route('game')!.sessions()[0]!;
  assert.equal(s.packetsFromClient, 1, 'a dropped datagram is not counted as forwarded');
});

test('udp route: an unreachable upstream ends that session only; the listener keeps serving', async (t) => {
  const deadPort = await freePort('udp');
  const live = await udpEcho(t);
  const n = await startNode(
    t,
    `
routes:
  dead:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${deadPort}
  live:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${live.port}
`,
  );
  const c = await udpClient(t);
  c.send(n.port('dead'), 'one');
  await waitFor(() => n.ofType('session-started').length === 1, 'session start');
  c.send(n.port('dead'), 'two'); // ICMP port unreachable surfaces as ECONNREFUSED on the connected socket
  await waitFor(() => n.ofType('session-ended').length === 1, 'session end');
  assert.equal(n.ofType('session-ended')[0]!.reason, 'upstream-unreachable');
  assert.equal(n.node.route('dead')!.active, 0);
  c.send(n.port('dead'), 'three');
  await waitFor(() => n.ofType('session-started').length === 2, 'a new session for the same client');
  c.send(n.port('live'), 'still here');
  assert.equal((await c.next()).toString(), 'still here');
});
