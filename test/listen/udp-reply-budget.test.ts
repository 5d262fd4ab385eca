import assert from 'node:assert/strict';
import { perDatapath } from '../datapath/datapaths.js';
import { sleep, udpClient, waitFor } from '../helpers/net.js';
import {
  amplifyingUpstream, dnsLikeUpstream, dnsQuery, wireguardLikeDownload, wireguardLikeUpstream, WG,
} from '../helpers/udp-shapes.js';

// The reply budget of UDP routes (udp.replyBudget, docs/security.md), once per datapath: spoofed
// sources get at most ratio x what "they" sent; real protocols pass untouched at the defaults.
const { test, startNode } = perDatapath();

const route = (upstream: number, udp = '') => `
routes:
  r:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
${udp ? `    udp: ${udp}` : ''}
`;

type Started = Awaited<ReturnType<typeof startNode>>;
const dropped = (n: Started, reason: string) =>
  n.ofType('datagrams-dropped').filter((e) => e.reason === reason).reduce((s, e) => s + e.count, 0);

test('reply budget: spoofed 1-byte datagrams 300 ms apart get nothing of the 50,000 bytes the upstream answers', async (t) => {
  const amp = await amplifyingUpstream(t, 50, 1000);
  const n = await startNode(t, route(amp.port));
  const victim = await udpClient(t); // its address is the one a spoofer would use; it never asked
  for (let i = 0; i < 3; i++) {
    victim.send(n.port('r'), Buffer.alloc(1));
    await sleep(300);
  }
  await waitFor(() => amp.sent === 150, 'upstream answered 3 x 50,000 bytes');
  await waitFor(() => dropped(n, 'reply-budget') === 150, 'every reply counted as over budget');
  assert.equal(victim.inbox.length, 0, '3 bytes buy 192 bytes: no 1,000-byte reply fits');
  const s = n.node.route('r')!.sessions()[0]!;
  assert.equal(s.bytesFromClient, 3);
  assert.equal(s.bytesToClient, 0);
});

test('reply budget: a 60-byte spoofed request gets whole replies up to 64x, and repeating it unlocks nothing more', async (t) => {
  const amp = await amplifyingUpstream(t, 50, 1000);
  const n = await startNode(t, route(amp.port));
  const victim = await udpClient(t);
  for (let round = 1; round <= 3; round++) {
    victim.send(n.port('r'), Buffer.alloc(60));
    await waitFor(() => amp.sent === 50 * round, 'upstream answered');
    const want = Math.floor((64 * 60 * round) / 1000);
    await waitFor(() => victim.inbox.length === want && dropped(n, 'reply-budget') === 50 * round - want, `round ${round}: ${want} replies`);
    const got = victim.inbox.reduce((s, b) => s + b.length, 0);
    assert.ok(got <= 64 * 60 * round, `${got} bytes out for ${60 * round} in`);
  }
});

test('reply budget: DNS-like request/response passes untouched at the route default (answers up to ~60x a query)', async (t) => {
  const dns = await dnsLikeUpstream(t);
  const n = await startNode(t, route(dns.port));
  const c = await udpClient(t);
  // [query, answer]: a plain A answer, a 1,232-byte EDNS answer, a 1,500-byte one, DNSSEC-sized 2,400 for a 40-byte query.
  const shapes: [number, number][] = [[40, 120], [45, 1232], [40, 1500], [40, 2400]];
  let id = 0;
  for (let round = 0; round < 25; round++) {
    for (const [q, a] of shapes) {
      c.send(n.port('r'), dnsQuery(++id, q, a));
      const answer = await c.next();
      assert.equal(answer.length, a);
      assert.equal(answer.readUInt16BE(2), id & 0xffff);
    }
  }
  assert.equal(dropped(n, 'reply-budget'), 0);
});

test('reply budget: a WireGuard-like tunnel with a bulk TCP download inside (slow start, 1 ack per 2 packets: up to ~59x, then ~30x) passes at the route default', async (t) => {
  const wg = await wireguardLikeUpstream(t);
  const n = await startNode(t, route(wg.port));
  const r = await wireguardLikeDownload(t, n.port('r'), 3000);
  assert.equal(r.received, 3000);
  assert.equal(r.bytes, WG.response + WG.syn + 3000 * WG.data);
  t.diagnostic(`${r.bytes} bytes down for ${r.sentBytes} up (${(r.bytes / r.sentBytes).toFixed(1)}x) in ${r.ms} ms`);
  assert.equal(dropped(n, 'reply-budget'), 0);
});

test('reply budget: a download-heavy flow (stretch acks, 1 per 16 packets, ~240x) passes once the budget is lifted, and is held without', async (t) => {
  const wg = await wireguardLikeUpstream(t);
  const lifted = await startNode(t, route(wg.port, '{ replyBudget: off }'));
  const r = await wireguardLikeDownload(t, lifted.port('r'), 3000, 16);
  assert.equal(r.received, 3000);
  assert.equal(dropped(lifted, 'reply-budget'), 0);
  t.diagnostic(`lifted: ${(r.bytes / r.sentBytes).toFixed(1)}x in ${r.ms} ms`);
  // At the default the same flow runs into the budget: it stalls, and the drops are counted.
  const held = await startNode(t, route(wg.port));
  await assert.rejects(wireguardLikeDownload(t, held.port('r'), 3000, 16, 500), /stalled/);
  await waitFor(() => dropped(held, 'reply-budget') > 0, 'drops counted');
});

test('reply budget: a route-level budget is the operator\'s to set (ratio and window)', async (t) => {
  const amp = await amplifyingUpstream(t, 10, 100);
  const n = await startNode(t, route(amp.port, '{ replyBudget: { ratio: 2, window: 1s } }'));
  const c = await udpClient(t);
  c.send(n.port('r'), Buffer.alloc(100)); // 200 bytes of replies allowed
  await waitFor(() => amp.sent === 10 && dropped(n, 'reply-budget') === 8, 'eight of ten over budget');
  assert.equal(c.inbox.length, 2);
});
