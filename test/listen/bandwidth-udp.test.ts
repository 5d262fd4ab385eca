import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { ManualClock } from '../helpers/manual-clock.js';
import { udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { perDatapath } from '../datapath/datapaths.js';
import { encodeProxyV2 } from '../../src/protocol/proxy-protocol/index.js';

const { test, startNode } = perDatapath();

type Node = Awaited<ReturnType<typeof startNode>>;
const droppedFor = (n: Node, reason: string) => n.ofType('datagrams-dropped').filter((e) => e.reason === reason).reduce((sum, e) => sum + e.count, 0);

/**
 * Limits are chosen so that the clock steps needed to flush the drop counters (one sweep, 250 ms)
 * refill less than one datagram: 1000-byte datagrams, 100 B/s (800bit/s), burst 10 datagrams.
 */
async function flushUntil(n: Node, clock: ManualClock, reason: string, want: number): Promise<void> {
  for (let i = 0; i < 200 && droppedFor(n, reason) < want; i++) {
    clock.advance(250);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('bandwidth (udp, real sockets): datagrams over the per-source limit are dropped and counted as bandwidth; the refill lets more through', async (t) => {
  const up = await udpEcho(t);
  const clock = new ManualClock();
  const n = await startNode(
    t,
    `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    bandwidth: { perSource: { up: 800bit/s }, burst: 10000 }
`,
    { clock },
  );
  const c = await udpClient(t);
  const dgram1000 = Buffer.alloc(1000, 1);
  for (let i = 0; i < 30; i++) c.send(n.port('game'), dgram1000);
  await waitFor(() => up.received === 10, 'the burst (10 datagrams) upstream');
  await flushUntil(n, clock, 'bandwidth', 20);
  assert.equal(droppedFor(n, 'bandwidth'), 20);
  assert.equal(up.received, 10);
  await waitFor(() => c.inbox.length === 10, 'every echo: the down direction has no limit');

  clock.advance(20_000 - clock.now()); // 20 s after the start: 2000 bytes of tokens
  for (let i = 0; i < 5; i++) c.send(n.port('game'), dgram1000);
  await waitFor(() => up.received === 12, 'two more datagrams after 20 s');
  await flushUntil(n, clock, 'bandwidth', 23);
  assert.equal(droppedFor(n, 'bandwidth'), 23);
  assert.equal(up.received, 12);
});

test('bandwidth (udp, real sockets on ::1): sources in one IPv6 /64 share one per-source bucket; another /64 has its own', async (t) => {
  const up = await udpEcho(t);
  const clock = new ManualClock();
  const n = await startNode(
    t,
    `
routes:
  game:
    listen: udp://[::1]:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: ["::1/128"] }
    bandwidth: { perSource: 800bit/s, burst: 10000 }
`,
    { clock },
  );
  const sender = dgram.createSocket({ type: 'udp6' });
  sender.bind(0, '::1');
  await once(sender, 'listening');
  t.after(() => sender.close());
  const from = (address: string, count: number) => {
    const header = encodeProxyV2({ transport: 'DGRAM', addresses: { source: { address, port: 40000 }, destination: { address: '2001:db8:ff::1', port: 27015 } } });
    for (let i = 0; i < count; i++) sender.send(Buffer.concat([header, Buffer.alloc(1000, 2)]), n.port('game'), '::1');
  };
  from('2001:db8:1:2::a', 6);
  await waitFor(() => up.received === 6, 'six datagrams of ::a');
  from('2001:db8:1:2::b', 6); // same /64: 4 tokens' worth left
  from('2001:db8:1:3::1', 6); // another /64: a full burst
  await waitFor(() => up.received === 16, 'four of ::b and six of the other /64');
  await flushUntil(n, clock, 'bandwidth', 2);
  assert.equal(droppedFor(n, 'bandwidth'), 2);
  assert.equal(up.received, 16);
});
