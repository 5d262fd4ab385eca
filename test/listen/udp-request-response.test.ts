import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { ManualClock } from '../helpers/manual-clock.js';
import { perDatapath } from '../datapath/datapaths.js';
import { waitFor } from '../helpers/net.js';

// Request/response protocols (DNS as `dig` sends it): every query comes from a new source port,
// so every query is a new session. Runs once per UDP datapath (js, native).
const { test, startNode } = perDatapath();

/** A DNS-like upstream: answers each query with its 2-byte id and the QR bit set. */
async function dnsLike(t: TestContext) {
  const sock = dgram.createSocket('udp4');
  let answered = 0;
  sock.on('message', (q, r) => {
    const a = Buffer.from(q);
    a[2] = a[2]! | 0x80;
    answered++;
    sock.send(a, r.port, r.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return { port: sock.address().port, get answered() { return answered; } };
}

/**
 * One query from a fresh socket (a new source port); resolves with the answer or null after 2 s.
 * The socket stays open until the test ends so that no later query reuses its port.
 */
async function query(t: TestContext, port: number, id: number): Promise<Buffer | null> {
  const sock = dgram.createSocket('udp4');
  t.after(() => sock.close());
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const q = Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  sock.send(q, port, '127.0.0.1');
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), 2000).unref());
  return Promise.race([once(sock, 'message').then(([m]) => m as Buffer), timeout]);
}

/** A route with default settings in front of `upstream`, on a clock the test moves. */
async function dnsRoute(t: TestContext, upstream: number, clock: ManualClock) {
  return startNode(t, `
routes:
  dns:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
`, { clock });
}

/** `count` sequential queries, each from a new port, `stepMs` of clock apart; the ids left unanswered (stops at 3). */
async function askInTurn(t: TestContext, port: number, count: number, clock: ManualClock, stepMs: number): Promise<number[]> {
  const unanswered: number[] = [];
  for (let id = 1; id <= count && unanswered.length < 3; id++) {
    clock.advance(stepMs);
    const a = await query(t, port, id);
    if (a === null || a.readUInt16BE(0) !== id || (a[2]! & 0x80) === 0) unanswered.push(id);
  }
  return unanswered;
}

test('udp route with default settings answers 200 sequential queries, each from a new source port', async (t) => {
  const upstream = await dnsLike(t);
  // The clock stands still, so no token comes back by refill: only answers give them back.
  const clock = new ManualClock();
  const n = await dnsRoute(t, upstream.port, clock);
  assert.deepEqual(await askInTurn(t, n.port('dns'), 200, clock, 0), [], 'every query answered');
  assert.equal(n.ofType('session-rejected').length, 0);
  assert.equal(n.ofType('session-started').length, 200, 'one session per query');
  assert.equal(upstream.answered, 200);
});

test('udp route: sessions that get no answer still spend the per-source creation rate', async (t) => {
  const silent = dgram.createSocket('udp4');
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => silent.close());
  const clock = new ManualClock();
  const n = await startNode(t, `
routes:
  dns:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${silent.address().port}
`, { clock });
  const socks: dgram.Socket[] = [];
  t.after(() => socks.forEach((s) => s.close()));
  for (let i = 0; i < 41; i++) {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    socks.push(s);
    s.send('q', n.port('dns'), '127.0.0.1');
    await waitFor(() => n.ofType('session-started').length + n.ofType('session-rejected').length === i + 1, `query ${i}`);
  }
  assert.equal(n.ofType('session-started').length, 40, 'the default burst of 40 per source');
  assert.deepEqual(n.ofType('session-rejected').map((e) => e.reason), ['limit-source-rate']);
});

test('udp route with default settings keeps answering past maxSessionsPerSource: finished exchanges make room', async (t) => {
  const upstream = await dnsLike(t);
  const clock = new ManualClock();
  const n = await dnsRoute(t, upstream.port, clock);
  // 100 queries a second from one client: 400 queries within the 30 s idle timeout.
  assert.deepEqual(await askInTurn(t, n.port('dns'), 400, clock, 10), [], 'every query answered although one source sent more than maxSessionsPerSource (256)');
  assert.equal(n.ofType('session-rejected').length, 0);
  const evicted = n.ofType('session-ended').filter((e) => e.reason === 'evicted');
  assert.ok(evicted.length >= 400 - 256, `${evicted.length} finished exchanges ended to make room`);
  assert.ok(evicted.every((e) => e.counters.packetsFromClient === 1 && e.counters.packetsToClient === 1), 'only one-request, answered sessions');
  assert.ok(n.node.route('dns')!.active <= 256);
});

test('udp route: a session that sent a second datagram is never ended to make room; the cap refuses instead', async (t) => {
  const upstream = await dnsLike(t);
  const clock = new ManualClock();
  const n = await startNode(t, `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream.port}
    udp: { maxSessionsPerSource: 2 }
`, { clock });
  const socks: dgram.Socket[] = [];
  t.after(() => socks.forEach((s) => s.close()));
  for (let i = 0; i < 2; i++) {
    const s = dgram.createSocket('udp4');
    socks.push(s);
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    for (const id of [1, 2]) {
      s.send(Buffer.from([0, id, 1, 0]), n.port('game'), '127.0.0.1');
      await once(s, 'message');
    }
  }
  clock.advance(5_000);
  const third = await query(t, n.port('game'), 9);
  assert.equal(third, null, 'no room: both sessions are conversations, not finished exchanges');
  assert.deepEqual(n.ofType('session-rejected').map((e) => e.reason), ['limit-source-sessions']);
  assert.equal(n.ofType('session-ended').length, 0);
});
