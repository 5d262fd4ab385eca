import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { perDatapath } from '../datapath/datapaths.js';
import { readAll, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { openCountryDatabase } from '../../src/admission/acl/country.js';
import { encodeProxyV1 } from '../../src/protocol/proxy-protocol/index.js';

const GEO_DB = new URL('../../../../shared/vectors/geoip/GeoLite2-Country-Test.mmdb', import.meta.url).pathname;

// The UDP tests run once per datapath (js, native); the TCP ones once, on the same startNode.
const { test: udpTest, startNode } = perDatapath();

async function udpClientOn(t: import('node:test').TestContext, host: string) {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.bind(0, host);
  await once(s, 'listening');
  t.after(() => s.close());
  const inbox: Buffer[] = [];
  s.on('message', (m) => inbox.push(m));
  return { s, inbox, send: (port: number, to: string, data: string) => s.send(data, port, to) };
}

udpTest('acl: a denied UDP client costs no upstream socket; an allowed one is served', async (t) => {
  const echo = await udpEcho(t);
  const n = await startNode(
    t,
    `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    acl: { allow: [127.0.0.0/8], deny: [127.0.0.2/32] }
`,
  );
  const bad = await udpClientOn(t, '127.0.0.2');
  bad.send(n.port('game'), '127.0.0.1', 'let me in');
  await waitFor(() => n.ofType('session-rejected').length === 1, 'rejection');
  const r = n.ofType('session-rejected')[0]!;
  assert.equal(r.reason, 'acl-cidr');
  assert.equal(r.detail, 'deny 127.0.0.2/32');
  assert.equal(r.client.address, '127.0.0.2');
  assert.equal(echo.received, 0, 'nothing reached the upstream');
  assert.equal(n.node.route('game')!.active, 0, 'no session, no upstream socket');
  const good = await udpClient(t);
  good.send(n.port('game'), 'hi');
  assert.equal((await good.next()).toString(), 'hi');
});

udpTest('acl: a dual-stack [::] listener applies IPv4 rules to IPv4 clients (mapped addresses), for UDP and TCP', async (t) => {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const n = await startNode(
    t,
    `
acl: { deny: [127.0.0.1/32] }
routes:
  game:
    listen: udp://[::]:0
    upstream: 127.0.0.1:${echo.port}
  ssh:
    listen: tcp://[::]:0
    upstream: 127.0.0.1:${up.port}
`,
  );
  const c = await udpClient(t);
  c.send(n.port('game'), 'x');
  const s = net.connect({ host: '127.0.0.1', port: n.port('ssh') });
  s.on('error', () => {});
  await waitFor(() => n.ofType('session-rejected').length === 2, 'two rejections');
  for (const r of n.ofType('session-rejected')) {
    assert.equal(r.reason, 'acl-cidr');
    assert.equal(r.client.address, '127.0.0.1', 'the client is reported in its IPv4 form');
  }
  assert.equal(echo.received, 0);
  assert.equal(up.sockets.size, 0);
  // The same listeners serve an IPv6 client, which the IPv4 rule does not match.
  const v6 = await udpClientOn(t, '::1');
  v6.send(n.port('game'), '::1', 'six');
  await waitFor(() => v6.inbox.length === 1, 'IPv6 echo');
  assert.equal(v6.inbox[0]!.toString(), 'six');
});

udpTest('acl: observe-only records the would-be denial and admits; a route acl replaces the top-level default', async (t) => {
  const echo = await udpEcho(t);
  const n = await startNode(
    t,
    `
acl: { deny: [127.0.0.0/8] }
routes:
  watched:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    acl: { deny: [127.0.0.0/8], observeOnly: true }
  open:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    acl: { deny: [192.0.2.0/24] }
  default:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
`,
  );
  const c = await udpClient(t);
  c.send(n.port('watched'), 'a');
  assert.equal((await c.next()).toString(), 'a');
  const r = n.ofType('session-rejected');
  assert.equal(r.length, 1);
  assert.equal(r[0]!.observeOnly, true);
  assert.equal(r[0]!.reason, 'acl-cidr');
  c.send(n.port('open'), 'b');
  assert.equal((await c.next()).toString(), 'b');
  c.send(n.port('default'), 'c');
  await waitFor(() => n.ofType('session-rejected').length === 2, 'default acl rejection');
  assert.equal(n.ofType('session-rejected')[1]!.route, 'default');
});

test('acl: country rules use the client address from a trusted PROXY header and a real MaxMind database', async (t) => {
  const geo = await openCountryDatabase(GEO_DB);
  const seen: string[] = [];
  const up = await tcpServer(t, (s) => {
    s.on('data', (d: Buffer) => seen.push(d.toString()));
    s.end();
  });
  const n = await startNode(
    t,
    `
geoip: { database: ${GEO_DB} }
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    acl: { countries: { allow: [GB] } }
    proxyProtocol: { accept: [127.0.0.1/32] }
`,
    { geo: () => geo },
  );
  const send = async (source: string) => {
    const s = net.connect({ host: '127.0.0.1', port: n.port('web') });
    s.on('error', () => {});
    await once(s, 'connect');
    s.write(Buffer.concat([encodeProxyV1({ source: { address: source, port: 40000 }, destination: { address: '198.51.100.1', port: 443 } }), Buffer.from(`from ${source}`)]));
    await once(s, 'close');
  };
  await send('81.2.69.160'); // GB
  await send('50.114.0.1'); // US
  await waitFor(() => seen.length === 1 && n.ofType('session-rejected').length === 1, 'one admitted, one refused');
  assert.deepEqual(seen, ['from 81.2.69.160'], 'only the GB client reached the upstream, without the header');
  const r = n.ofType('session-rejected')[0]!;
  assert.equal(r.reason, 'acl-country');
  assert.equal(r.client.address, '50.114.0.1');
  const started = n.ofType('session-started')[0]!;
  assert.equal(started.flow.client.address, '81.2.69.160');
  assert.equal(started.flow.client.port, 40000);
});

test('acl: a refused TCP client is closed without a dial', async (t) => {
  const up = await tcpServer(t);
  const n = await startNode(
    t,
    `
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    acl: { allow: [192.0.2.0/24] }
`,
  );
  const s = net.connect({ host: '127.0.0.1', port: n.port('ssh') });
  s.on('error', () => {});
  const data = await readAll(s).catch(() => Buffer.alloc(0));
  assert.equal(data.length, 0);
  assert.equal(n.ofType('session-rejected')[0]!.reason, 'acl-cidr');
  assert.equal(n.ofType('dial-ok').length + n.ofType('dial-error').length, 0);
  assert.equal(up.sockets.size, 0);
});
