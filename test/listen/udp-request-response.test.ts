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

test('udp route with default settings answers 200 sequential queries, each from a new source port', async (t) => {
  const upstream = await dnsLike(t);
  // The clock stands still, so no token comes back by refill: only answers give them back.
  const clock = new ManualClock();
  const n = await startNode(t, `
routes:
  dns:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream.port}
`, { clock });
  const unanswered: number[] = [];
  for (let id = 1; id <= 200; id++) {
    const a = await query(t, n.port('dns'), id);
    if (a === null || a.readUInt16BE(0) !== id || (a[2]! & 0x80) === 0) unanswered.push(id);
    if (unanswered.length === 3) break; // enough to fail; do not wait out every timeout
  }
  assert.deepEqual(unanswered, [], 'every query answered');
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
