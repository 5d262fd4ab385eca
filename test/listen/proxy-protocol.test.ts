import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { ManualClock } from '../helpers/manual-clock.js';
import { readAll, tcpConnect, tcpServer, udpClient, waitFor } from '../helpers/net.js';
import { perDatapath } from '../datapath/datapaths.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { decodeProxyDatagram, decodeProxyHeader, encodeProxyV1, encodeProxyV2 } from '../../src/protocol/proxy-protocol/index.js';

// The UDP tests run once per UDP datapath, the TCP ones once per stream datapath (js, native).
const { test: udpTest, startNode } = perDatapath();
const { test: tcpTest, startNode: startTcpNode } = perStreamDatapath();

const v2Tcp = (src: string, port: number) =>
  encodeProxyV2({ transport: 'STREAM', addresses: { source: { address: src, port }, destination: { address: '192.0.2.10', port: 443 } } });
const v2Udp = (src: string, port: number) =>
  encodeProxyV2({ transport: 'DGRAM', addresses: { source: { address: src, port }, destination: { address: '192.0.2.10', port: 5353 } } });

/** A TCP upstream that records everything each connection sent, until its FIN. */
async function recordingUpstream(t: import('node:test').TestContext) {
  const got: Buffer[] = [];
  const up = await tcpServer(t, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      got.push(Buffer.concat(parts));
      s.end('ok');
    });
  });
  return { ...up, got };
}

tcpTest('proxy protocol (tcp): a trusted v2 header sets the client; the bytes after it pass untouched; v1 and v2 are sent upstream', async (t) => {
  for (const send of ['v1', 'v2'] as const) {
    const up = await recordingUpstream(t);
    const n = await startTcpNode(
      t,
      `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32], send: ${send} }
`,
    );
    const c = await tcpConnect(t, n.port('web'));
    c.end(Buffer.concat([v2Tcp('203.0.113.9', 51000), Buffer.from('GET / HTTP/1.0\r\n\r\n')]));
    assert.equal((await readAll(c)).toString(), 'ok');
    await waitFor(() => up.got.length === 1, 'upstream got the stream');
    const r = decodeProxyHeader(up.got[0]!);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.equal(r.header.version, send === 'v1' ? 1 : 2);
    assert.deepEqual(r.header.addresses?.source, { address: '203.0.113.9', port: 51000, family: 4 });
    assert.deepEqual(r.header.addresses?.destination, { address: '192.0.2.10', port: 443, family: 4 });
    assert.equal(up.got[0]!.subarray(r.length).toString(), 'GET / HTTP/1.0\r\n\r\n');
    const started = n.ofType('session-started')[0]!;
    assert.equal(started.flow.client.address, '203.0.113.9', 'the header address is the client from then on');
  }
});

tcpTest('proxy protocol (tcp): a header split into single bytes is read whole', async (t) => {
  const up = await recordingUpstream(t);
  const n = await startTcpNode(t, `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32] }
`);
  const c = await tcpConnect(t, n.port('web'));
  const bytes = Buffer.concat([encodeProxyV1({ source: { address: '2001:db8::7', port: 1234 }, destination: { address: '2001:db8::1', port: 22 } }), Buffer.from('SSH-2.0-x\r\n')]);
  for (const b of bytes) {
    c.write(Buffer.of(b));
    await new Promise((r) => setImmediate(r));
  }
  c.end();
  await readAll(c);
  await waitFor(() => up.got.length === 1, 'upstream got the stream');
  assert.equal(up.got[0]!.toString(), 'SSH-2.0-x\r\n', 'no header was sent upstream (send is off) and the payload is intact');
  assert.equal(n.ofType('session-started')[0]!.flow.client.address, '2001:db8::7');
});

tcpTest('proxy protocol (tcp): trusted sender without a header, header from an untrusted sender, and a stalled header are refused', async (t) => {
  const up = await recordingUpstream(t);
  const n = await startTcpNode(t, `
routes:
  trusted:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32], headerTimeout: 200ms }
  untrusted:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [192.0.2.0/24] }
`);
  const a = await tcpConnect(t, n.port('trusted'));
  a.write('GET / HTTP/1.0\r\n\r\n');
  await once(a, 'end');
  const b = await tcpConnect(t, n.port('untrusted'));
  b.write(v2Tcp('198.51.100.1', 1));
  await once(b, 'end');
  const c = await tcpConnect(t, n.port('trusted'));
  c.write(Buffer.from('PROXY TCP4 '));
  const started = Date.now();
  await once(c, 'end');
  assert.ok(Date.now() - started >= 150, 'the stalled header was given its timeout');
  const reasons = n.ofType('session-rejected').map((r) => r.reason);
  assert.deepEqual(reasons, ['proxy-header-missing', 'proxy-header-untrusted', 'proxy-header-invalid']);
  // The untrusted one is refused before the dial (proxy-untrusted.test.ts counts the upstream's accepts).
  assert.ok(up.got.every((b) => b.length === 0), 'none of them reached the upstream with data');
  // An untrusted client speaking plainly on the same route is served.
  const d = await tcpConnect(t, n.port('untrusted'));
  d.end('plain');
  assert.equal((await readAll(d)).toString(), 'ok');
  await waitFor(() => up.got.some((b) => b.toString() === 'plain'), 'plain client served');
});

udpTest('proxy protocol (udp): each trusted datagram carries the real client; sessions are keyed by it and replies go back to the proxy', async (t) => {
  const clock = new ManualClock();
  const up = dgram.createSocket('udp4');
  const upstreamGot: Buffer[] = [];
  up.on('message', (m, r) => {
    upstreamGot.push(m);
    up.send(Buffer.from(`reply${upstreamGot.length}`), r.port, r.address);
  });
  up.bind(0, '127.0.0.1');
  await once(up, 'listening');
  t.after(() => up.close());
  const n = await startNode(t, `
routes:
  dns:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${up.address().port}
    proxyProtocol: { accept: [127.0.0.1/32], send: v2, udp: every }
`, { clock });
  const proxy = await udpClient(t); // one socket speaking for two clients
  proxy.send(n.port('dns'), Buffer.concat([v2Udp('203.0.113.1', 1111), Buffer.from('q1')]));
  assert.equal((await proxy.next()).toString(), 'reply1');
  proxy.send(n.port('dns'), Buffer.concat([v2Udp('203.0.113.2', 2222), Buffer.from('q2')]));
  assert.equal((await proxy.next()).toString(), 'reply2');
  proxy.send(n.port('dns'), Buffer.concat([v2Udp('203.0.113.1', 1111), Buffer.from('q3')]));
  assert.equal((await proxy.next()).toString(), 'reply3');
  const sessions = n.node.route('dns')!.sessions().map((s) => `${s.client.address}:${s.client.port}`).sort();
  assert.deepEqual(sessions, ['203.0.113.1:1111', '203.0.113.2:2222']);
  // send: v2, every: each datagram upstream carries a header with the real client.
  const sources = upstreamGot.map((m) => decodeProxyDatagram(m));
  assert.deepEqual(sources.map((h) => h.header.addresses?.source.address), ['203.0.113.1', '203.0.113.2', '203.0.113.1']);
  assert.deepEqual(upstreamGot.map((m, i) => m.subarray(sources[i]!.length).toString()), ['q1', 'q2', 'q3']);
  assert.deepEqual(sources.map((h) => h.header.transport), ['DGRAM', 'DGRAM', 'DGRAM']);
});

udpTest('proxy protocol (udp): untrusted headers and trusted datagrams without one are dropped and counted', async (t) => {
  const clock = new ManualClock();
  const up = await recordingUdp(t);
  const n = await startNode(t, `
routes:
  trusted:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32] }
  untrusted:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [192.0.2.0/24] }
`, { clock });
  const c = await udpClient(t);
  c.send(n.port('trusted'), 'no header here');
  c.send(n.port('trusted'), Buffer.concat([v2Udp('203.0.113.1', 1).subarray(0, 20), Buffer.from('x')]));
  c.send(n.port('untrusted'), Buffer.concat([v2Udp('203.0.113.1', 1), Buffer.from('spoof')]));
  c.send(n.port('untrusted'), 'plain');
  await waitFor(() => up.got.length === 1, 'the plain datagram');
  assert.equal(up.got[0]!.toString(), 'plain');
  clock.advance(300);
  const drops = n.ofType('datagrams-dropped').map((d) => `${d.route}:${d.reason}:${d.count}`).sort();
  assert.deepEqual(drops, ['trusted:proxy-header-invalid:1', 'trusted:proxy-header-missing:1', 'untrusted:proxy-header-untrusted:1']);
});

udpTest('proxy protocol (udp first): the header rides the first datagrams until the upstream answers, so a lost first datagram costs nothing', async (t) => {
  const up = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  up.on('message', (m, r) => {
    got.push(m);
    if (got.length >= 2) up.send('pong', r.port, r.address); // the first datagram is "lost": no answer
  });
  up.bind(0, '127.0.0.1');
  await once(up, 'listening');
  t.after(() => up.close());
  const n = await startNode(t, `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${up.address().port}
    proxyProtocol: { send: v2, udp: first }
`);
  const c = await udpClient(t);
  c.send(n.port('game'), 'one');
  await waitFor(() => got.length === 1, 'first datagram');
  c.send(n.port('game'), 'two');
  assert.equal((await c.next()).toString(), 'pong');
  c.send(n.port('game'), 'three');
  await waitFor(() => got.length === 3, 'third datagram');
  const withHeader = got.map((m) => m[0] === 0x0d);
  assert.deepEqual(withHeader, [true, true, false]);
  const h = decodeProxyDatagram(got[1]!);
  assert.equal(h.header.addresses?.source.port, c.port);
  assert.equal(got[1]!.subarray(h.length).toString(), 'two');
  assert.equal(got[2]!.toString(), 'three');
});

async function recordingUdp(t: import('node:test').TestContext) {
  const s = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return { port: s.address().port, got };
}

tcpTest('proxy protocol (tcp): the header read is bounded in size', async (t) => {
  const up = await recordingUpstream(t);
  const n = await startTcpNode(t, `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32], maxHeaderBytes: 512 }
`);
  const s = net.connect({ host: '127.0.0.1', port: n.port('web') });
  s.on('error', () => {});
  await once(s, 'connect');
  // A v2 header announcing 60000 bytes of TLVs: refused once the fixed part is in, not after buffering it.
  const big = Buffer.from('0d0a0d0a000d0a515549540a2111ea60', 'hex');
  s.write(big);
  await once(s, 'close');
  assert.equal(n.ofType('session-rejected')[0]!.reason, 'proxy-header-invalid');
});
