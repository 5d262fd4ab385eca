import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { ManualClock } from '../helpers/manual-clock.js';
import { startNode } from '../helpers/node.js';
import { tcpServer, udpEcho, waitFor } from '../helpers/net.js';
import { encodeProxyV2 } from '../../src/protocol/proxy-protocol/index.js';

/**
 * A trusted PROXY sender on ::1 speaks for clients of one /64, another /64 and IPv4: the route's
 * per-source cap and creation rate count the /64 as one source, over real sockets.
 */
test('sourcePrefix (tcp, real sockets on ::1): /128s of one /64 share the per-source cap and rate; another /64 and IPv4 addresses do not', async (t) => {
  let accepted = 0;
  const up = await tcpServer(t, (s) => {
    accepted++;
    s.on('data', () => {});
    s.on('end', () => s.end());
  });
  const clock = new ManualClock();
  const n = await startNode(
    t,
    `
routes:
  web:
    listen: tcp://[::1]:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: ["::1/128"] }
    tcp: { maxConnectionsPerSource: 2, ratePerSource: { perSecond: 1, burst: 3 } }
`,
    { clock },
  );
  const port = n.port('web');
  const from = async (address: string, family: 4 | 6) => {
    const s = net.connect({ host: '::1', port, allowHalfOpen: true });
    s.on('error', () => {});
    t.after(() => s.destroy());
    await once(s, 'connect');
    const dst = family === 6 ? { address: '2001:db8:ff::1', port: 443 } : { address: '192.0.2.10', port: 443 };
    s.write(encodeProxyV2({ transport: 'STREAM', addresses: { source: { address, port: 40000 }, destination: dst } }));
    return s;
  };
  const settled = () => n.ofType('session-started').length + n.ofType('session-rejected').length;
  const step = async (address: string, family: 4 | 6 = 6) => {
    const before = settled();
    const s = await from(address, family);
    await waitFor(() => settled() > before, `verdict for ${address}`);
    return s;
  };

  const a = await step('2001:db8:1:2::a');
  const b = await step('2001:db8:1:2::b');
  await step('2001:db8:1:2::c');
  a.destroy();
  await waitFor(() => n.node.route('web')!.active === 1, 'first connection ended');
  await step('2001:db8:1:2::d');
  b.destroy();
  await waitFor(() => n.node.route('web')!.active === 1, 'second connection ended');
  await step('2001:db8:1:2::e');
  await step('2001:db8:1:3::1');
  await step('198.51.100.1', 4);
  await step('198.51.100.2', 4);
  await step('198.51.100.2', 4);
  await step('198.51.100.2', 4);

  const rejected = n.ofType('session-rejected').map((e) => `${e.client.address} ${e.reason} ${e.detail ?? ''}`.trim());
  assert.deepEqual(rejected, [
    '2001:db8:1:2::c limit-source-sessions source 2001:db8:1:2::/64',
    '2001:db8:1:2::e limit-source-rate source 2001:db8:1:2::/64',
    '198.51.100.2 limit-source-sessions',
  ]);
  const started = n.ofType('session-started').map((e) => e.flow.client.address);
  assert.deepEqual(started, ['2001:db8:1:2::a', '2001:db8:1:2::b', '2001:db8:1:2::d', '2001:db8:1:3::1', '198.51.100.1', '198.51.100.2', '198.51.100.2']);
  await waitFor(() => accepted === 7, 'the upstream saw exactly the admitted connections');
});

test('sourcePrefix (udp, real sockets on ::1): sessions of /128s in one /64 share maxSessionsPerSource; another /64 and IPv4 addresses do not', async (t) => {
  const up = await udpEcho(t);
  const n = await startNode(
    t,
    `
routes:
  dns:
    listen: udp://[::1]:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: ["::1/128"] }
    udp: { maxSessionsPerSource: 2 }
`,
    { clock: new ManualClock() },
  );
  const sender = dgram.createSocket({ type: 'udp6' });
  sender.bind(0, '::1');
  await once(sender, 'listening');
  t.after(() => sender.close());
  const settled = () => n.ofType('session-started').length + n.ofType('session-rejected').length;
  const from = async (address: string) => {
    const before = settled();
    const dst = address.includes(':') ? { address: '2001:db8:ff::1', port: 53 } : { address: '192.0.2.10', port: 53 };
    const header = encodeProxyV2({ transport: 'DGRAM', addresses: { source: { address, port: 40000 }, destination: dst } });
    sender.send(Buffer.concat([header, Buffer.from('q')]), n.port('dns'), '::1');
    await waitFor(() => settled() > before, `verdict for ${address}`);
  };
  for (const a of ['2001:db8:1:2::a', '2001:db8:1:2::b', '2001:db8:1:2::c', '2001:db8:1:3::1', '198.51.100.1', '198.51.100.2']) await from(a);
  const rejected = n.ofType('session-rejected').map((e) => `${e.client.address} ${e.reason} ${e.detail ?? ''}`.trim());
  assert.deepEqual(rejected, ['2001:db8:1:2::c limit-source-sessions source 2001:db8:1:2::/64']);
  assert.deepEqual(n.ofType('session-started').map((e) => e.flow.client.address), ['2001:db8:1:2::a', '2001:db8:1:2::b', '2001:db8:1:3::1', '198.51.100.1', '198.51.100.2']);
  await waitFor(() => up.received === 5, 'the upstream saw the admitted sessions only');
  assert.equal(up.sources.size, 5);
});
