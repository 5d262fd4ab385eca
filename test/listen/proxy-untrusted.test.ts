import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { encodeProxyV1, encodeProxyV2 } from '../../src/protocol/proxy-protocol/index.js';

// Each test runs on both stream datapaths.
const { test: tcpTest, startNode: startTcpNode } = perStreamDatapath();

const v2 = encodeProxyV2({ transport: 'STREAM', addresses: { source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 443 } } });
const v1 = encodeProxyV1({ source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 443 } });

/** An upstream that counts the connections it accepts and the bytes they bring; `greet` speaks first. */
async function countingUpstream(t: import('node:test').TestContext, greet?: string) {
  const stats = { accepts: 0, bytes: 0 };
  const up = await tcpServer(t, (s) => {
    stats.accepts++;
    if (greet) s.write(greet);
    s.on('data', (d: Buffer) => (stats.bytes += d.length));
    s.on('end', () => s.end());
  });
  return { port: up.port, stats };
}

const route = (upstream: number, wait?: string) => `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
    proxyProtocol: { accept: [192.0.2.0/24]${wait ? `, untrustedWait: ${wait}` : ''} }
`;

tcpTest('proxy protocol (tcp): a header from an untrusted sender is refused before the dial: zero upstream connections', async (t) => {
  const up = await countingUpstream(t);
  const n = await startTcpNode(t, route(up.port, '2s'));
  const rejected = () => n.ofType('session-rejected').length;
  for (const bytes of [v2, v1]) {
    const c = await tcpConnect(t, n.port('web'));
    c.write(bytes);
    await readAll(c);
  }
  // A header that arrives in two pieces within the wait is seen whole.
  const split = await tcpConnect(t, n.port('web'));
  split.write(v2.subarray(0, 5));
  await new Promise((r) => setTimeout(r, 20));
  split.write(v2.subarray(5));
  await readAll(split);
  await waitFor(() => rejected() === 3, 'three refusals');
  assert.deepEqual(n.ofType('session-rejected').map((e) => e.reason), ['proxy-header-untrusted', 'proxy-header-untrusted', 'proxy-header-untrusted']);
  assert.equal(n.ofType('session-started').length, 0);
  assert.equal(n.node.route('web')!.active, 0, 'nothing held: the refused connections released their slots');

  // The counter counts: a plain client on the same route reaches the upstream.
  const plain = await tcpConnect(t, n.port('web'));
  plain.end('plain');
  await readAll(plain);
  await waitFor(() => up.stats.accepts === 1 && up.stats.bytes === 5, 'plain client served');
  assert.equal(up.stats.accepts, 1, 'the three untrusted headers cost the upstream no connection');
});

tcpTest('proxy protocol (tcp): a server-speaks-first upstream greets a silent untrusted client after the wait; a late header is still refused with no byte upstream', async (t) => {
  const up = await countingUpstream(t, '220 ready\r\n');
  const n = await startTcpNode(t, route(up.port));
  const c = net.connect({ host: '127.0.0.1', port: n.port('web'), allowHalfOpen: true });
  c.on('error', () => {});
  t.after(() => c.destroy());
  const started = process.hrtime.bigint();
  await once(c, 'connect');
  const [greeting] = (await once(c, 'data')) as [Buffer];
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.diagnostic(`greeting after ${ms.toFixed(1)} ms with the default untrustedWait (50ms)`);
  assert.equal(greeting.toString(), '220 ready\r\n');
  assert.equal(up.stats.accepts, 1);
  c.write(v2);
  await readAll(c);
  await waitFor(() => n.ofType('session-rejected').length === 1, 'late header refused');
  assert.equal(n.ofType('session-rejected')[0]!.reason, 'proxy-header-untrusted');
  assert.equal(up.stats.bytes, 0, 'no byte of the header reached the upstream');
});

tcpTest('proxy protocol (tcp): untrustedWait 0s dials at once and refuses the header after the dial (the upstream sees a connection, no bytes)', async (t) => {
  const up = await countingUpstream(t);
  const n = await startTcpNode(t, route(up.port, '0s'));
  const c = await tcpConnect(t, n.port('web'));
  c.write(v2);
  await readAll(c);
  await waitFor(() => up.stats.accepts === 1, 'dialed before the check');
  assert.equal(n.ofType('session-rejected')[0]?.reason, 'proxy-header-untrusted');
  assert.equal(up.stats.bytes, 0);
});

tcpTest('proxy protocol (tcp): an untrusted client that resets during the wait costs no upstream connection; one that only half-closes is served', async (t) => {
  const up = await countingUpstream(t);
  const n = await startTcpNode(t, route(up.port, '2s'));
  const c = await tcpConnect(t, n.port('web'));
  await waitFor(() => n.node.route('web')!.active === 1, 'admitted, waiting for first bytes');
  c.resetAndDestroy();
  await waitFor(() => n.node.route('web')!.active === 0, 'connection gone');
  // A FIN without data is a half-close, not a departure: it is dialed and relayed.
  const h = await tcpConnect(t, n.port('web'));
  h.end();
  await readAll(h);
  assert.equal(up.stats.accepts, 1, 'only the half-closed client reached the upstream');
  assert.equal(n.ofType('session-started').length, 1);
});
