import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startNode } from '../helpers/node.js';
import { freePort, readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { havePeer } from '../helpers/peers.js';
import { dribbler, run, subjectSeen, tlsServer } from '../helpers/tls-servers.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { decodeProxyHeader, encodeProxyV1 } from '../../src/protocol/proxy-protocol/index.js';
import { CLIENT_HELLO_TIMEOUT_MS, PENDING_HELLOS } from '../../src/listen/sni-listener.js';
import { clientHelloMessage, inRecords } from '../protocol/tls/hello-builder.js';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/observe/metrics.js';
import { accessLogSink } from '../../src/observe/access-log.js';
import { systemClock } from '../../src/core/clock.js';

async function twoServers(t: TestContext, extra = '') {
  const alpha = await tlsServer(t, 'alpha.test', 'alpha-server\n');
  const beta = await tlsServer(t, 'beta.test', 'beta-server\n');
  const n = await startNode(
    t,
    `
routes:
  alpha: { listen: "tcp://127.0.0.1:0", match: { sni: [alpha.test] }, upstream: "127.0.0.1:${alpha}" }
  beta:  { listen: "tcp://127.0.0.1:0", match: { sni: ["*.beta.test", beta.test] }, upstream: "127.0.0.1:${beta}" }
${extra}`,
  );
  assert.equal(n.port('alpha'), n.port('beta'), 'one shared port');
  return { ...n, sluice: n.port('alpha') };
}

test('openssl s_client and curl reach each of two TLS servers behind one port by name; an unknown name is refused', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl') || !havePeer(t, 'curl', 'curl')) return;
  const { sluice, ofType } = await twoServers(t);
  const sClient = (name: string) => run('openssl', ['s_client', '-connect', `127.0.0.1:${sluice}`, '-servername', name]);
  assert.equal(subjectSeen(await sClient('alpha.test')), 'alpha.test');
  assert.equal(subjectSeen(await sClient('www.beta.test')), 'beta.test', 'wildcard');
  assert.equal(subjectSeen(await sClient('BETA.test.')), 'beta.test', 'canonical: case and trailing dot');
  const curl = (name: string) => run('curl', ['-sk', '--max-time', '10', '--resolve', `${name}:${sluice}:127.0.0.1`, `https://${name}:${sluice}/id.txt`]);
  assert.equal((await curl('alpha.test')).trim(), 'alpha-server');
  assert.equal((await curl('x.y.beta.test')).trim(), 'beta-server');

  const unknown = await sClient('gamma.test');
  assert.equal(subjectSeen(unknown), undefined, unknown);
  await waitFor(() => ofType('session-rejected').some((e) => e.reason === 'no-route-for-name'));
  const r = ofType('session-rejected').find((e) => e.reason === 'no-route-for-name')!;
  assert.equal(r.detail, 'name gamma.test');
  assert.equal(r.route, `tcp://127.0.0.1:${sluice}`);
  assert.equal(ofType('session-started').length, 5);
});

test('an unknown name gets no byte from any server, and a default route takes names no route matches', async (t) => {
  const seenByDefault: Buffer[] = [];
  const fallback = await tcpServer(t, (s) => s.on('data', (d) => (seenByDefault.push(d), s.end('default\n'))));
  const named = await tcpServer(t, (s) => s.end('named\n'));
  const hello = (name: string) => inRecords(clientHelloMessage({ serverName: name, alpn: ['h2'] }), [100]);
  const strict = await startNode(t, `
routes:
  a: { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${named.port}" }
`);
  const registry = new Registry();
  const metrics = createMetrics(registry);
  const lines: string[] = [];
  strict.events.subscribe(metrics.sink);
  strict.events.subscribe(accessLogSink({ write: (l: string) => void lines.push(l), close: async () => {} }, systemClock));
  const c = await tcpConnect(t, strict.port('a'));
  c.end(hello('b.test'));
  assert.equal((await readAll(c)).length, 0);
  assert.equal(named.sockets.size, 0);
  assert.deepEqual(strict.ofType('session-rejected').map((e) => e.reason), ['no-route-for-name']);
  const label = `tcp://127.0.0.1:${strict.port('a')}`;
  assert.match(await registry.metrics(), new RegExp(`sluice_sessions_rejected_total\\{route="${label.replace(/[/.]/g, '\\$&')}",proto="tcp",reason="no-route-for-name"\\} 1`));
  const line = JSON.parse(lines.join('').trim()) as Record<string, unknown>;
  assert.deepEqual([line.event ?? line.type, line.route, line.reason, line.detail], ['reject', label, 'no-route-for-name', 'name b.test']);

  const withDefault = await startNode(t, `
routes:
  a:   { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${named.port}" }
  any: { listen: "tcp://127.0.0.1:0", upstream: "127.0.0.1:${fallback.port}" }
`);
  const d = await tcpConnect(t, withDefault.port('any'));
  d.end(hello('b.test')); // the client's FIN right behind its ClientHello reaches the upstream after the bytes
  assert.equal((await readAll(d)).toString(), 'default\n');
  assert.ok(Buffer.concat(seenByDefault).equals(hello('b.test')), 'the ClientHello bytes are relayed unchanged');
  const e = await tcpConnect(t, withDefault.port('a'));
  e.write(hello('a.test'));
  assert.equal((await readAll(e)).toString(), 'named\n');
});

test('a ClientHello dribbled one byte at a time by a real client still routes', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl')) return;
  const { sluice } = await twoServers(t);
  // Between s_client and Sluice: client bytes go on one at a time, each in its own segment.
  const port = await dribbler(t, sluice);
  const out = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'www.beta.test']);
  assert.equal(subjectSeen(out), 'beta.test', out);
});

test('PROXY: a trusted header is read before the ClientHello; the header sent upstream goes before the replayed ClientHello', async (t) => {
  const received: Buffer[] = [];
  const upstream = await tcpServer(t, (s) => s.on('data', (d) => received.push(d)));
  const pp = `proxyProtocol: { accept: [127.0.0.1/32], send: v2 }`;
  const n = await startNode(t, `
routes:
  a: { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${upstream.port}", ${pp} }
  b: { listen: "tcp://127.0.0.1:0", match: { sni: [b.test] }, upstream: "127.0.0.1:1", ${pp} }
`);
  const hello = inRecords(clientHelloMessage({ serverName: 'a.test' }));
  const c = await tcpConnect(t, n.port('a'));
  const inbound = encodeProxyV1({ source: { address: '192.0.2.7', port: 40000 }, destination: { address: '198.51.100.1', port: 443 } });
  c.write(Buffer.concat([inbound, hello, Buffer.from('after')]));
  await waitFor(() => Buffer.concat(received).length >= hello.length + 5 + 16, 'header and bytes upstream');
  const got = Buffer.concat(received);
  const r = decodeProxyHeader(got);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  assert.equal(r.header.addresses?.source.address, '192.0.2.7');
  assert.equal(r.header.addresses?.source.port, 40000);
  assert.equal(r.header.addresses?.destination.address, '198.51.100.1');
  assert.ok(got.subarray(r.length).equals(Buffer.concat([hello, Buffer.from('after')])));
  assert.equal(n.ofType('session-started')[0]!.flow.client.address, '192.0.2.7');
});

test('PROXY v2 to the upstream carries the real client address when no header is received', async (t) => {
  const received: Buffer[] = [];
  const upstream = await tcpServer(t, (s) => s.on('data', (d) => received.push(d)));
  const n = await startNode(t, `
routes:
  a: { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${upstream.port}", proxyProtocol: { send: v2 } }
`);
  const hello = inRecords(clientHelloMessage({ serverName: 'a.test' }), [7, 50]);
  const c = await tcpConnect(t, n.port('a'));
  c.write(hello);
  await waitFor(() => Buffer.concat(received).length >= hello.length + 16);
  const got = Buffer.concat(received);
  const r = decodeProxyHeader(got);
  assert.ok(r.kind === 'ok' && r.header.addresses?.source.port === c.localPort && r.header.addresses?.source.address === '127.0.0.1');
  assert.ok(r.kind === 'ok' && got.subarray(r.length).equals(hello));
});

test('garbage and a silent client are refused with their reasons, without reaching an upstream', async (t) => {
  const clock = new ManualClock();
  const upstream = await tcpServer(t);
  const n = await startNode(t, `
routes:
  a:   { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${upstream.port}" }
  any: { listen: "tcp://127.0.0.1:0", upstream: "127.0.0.1:${upstream.port}" }
`, { clock });
  const http = await tcpConnect(t, n.port('a'));
  http.write('GET / HTTP/1.1\r\n\r\n');
  assert.equal((await readAll(http)).length, 0);
  const silent = await tcpConnect(t, n.port('a'));
  silent.write(inRecords(clientHelloMessage({ serverName: 'a.test' })).subarray(0, 20));
  await waitFor(() => clock.pendingTimers > 0, 'the ClientHello deadline armed');
  clock.advance(CLIENT_HELLO_TIMEOUT_MS - 1);
  assert.equal(silent.destroyed || silent.readableEnded, false);
  clock.advance(1);
  assert.equal((await readAll(silent)).length, 0);
  assert.deepEqual(n.ofType('session-rejected').map((e) => [e.reason, e.detail]), [['client-hello-invalid', 'not-tls'], ['client-hello-timeout', undefined]]);
  assert.equal(upstream.sockets.size, 0);
});

test('reload: a route joins and leaves a shared address; the last one out frees the port', async (t) => {
  const upstream = await tcpServer(t, (s) => s.end('up\n'));
  const port = await freePort();
  const yaml = (names: string[]) => `routes:\n${names.map((n) => `  ${n}: { listen: "tcp://127.0.0.1:${port}", match: { sni: [${n}.test] }, upstream: "127.0.0.1:${upstream.port}" }`).join('\n')}\n`;
  const n = await startNode(t, yaml(['a']));
  const { config } = await import('../helpers/node.js');
  await n.node.reload(config(yaml(['a', 'b'])));
  const c = await tcpConnect(t, port);
  c.write(inRecords(clientHelloMessage({ serverName: 'b.test' })));
  assert.equal((await readAll(c)).toString(), 'up\n');
  c.destroy();
  await n.node.reload(config(yaml(['b'])));
  await n.node.reload(config('routes: {}\n'));
  await waitFor(() => n.ofType('route-down').length === 2);
  const again = net.createServer();
  again.listen(port, '127.0.0.1');
  await once(again, 'listening');
  again.close();
});

test('reload: making a plain route\'s own address shared is refused with the bind error; the running routes stay', async (t) => {
  const upstream = await tcpServer(t, (s) => s.end('up\n'));
  const port = await freePort();
  const plain = `routes:\n  a: { listen: "tcp://127.0.0.1:${port}", upstream: "127.0.0.1:${upstream.port}" }\n`;
  const n = await startNode(t, plain);
  const { config } = await import('../helpers/node.js');
  const shared = `${plain}  b: { listen: "tcp://127.0.0.1:${port}", match: { sni: [b.test] }, upstream: "127.0.0.1:${upstream.port}" }\n`;
  await assert.rejects(n.node.reload(config(shared)), (err: Error & { code?: string }) => err.code === 'SLUICE_ERR_BIND' && /EADDRINUSE/.test(err.message));
  assert.deepEqual(n.node.routes().map((r) => r.name), ['a']);
  const c = await tcpConnect(t, port);
  c.end('plain, not TLS');
  assert.equal((await readAll(c)).toString(), 'up\n');
});

test('the picked route admits with its own ACL; PROXY headers from untrusted senders are refused before any route', async (t) => {
  const upstream = await tcpServer(t, (s) => s.end('up\n'));
  const n = await startNode(t, `
routes:
  open:   { listen: "tcp://127.0.0.1:0", match: { sni: [open.test] }, upstream: "127.0.0.1:${upstream.port}", proxyProtocol: { accept: [192.0.2.0/24] } }
  closed: { listen: "tcp://127.0.0.1:0", match: { sni: [closed.test] }, upstream: "127.0.0.1:${upstream.port}", proxyProtocol: { accept: [192.0.2.0/24] }, acl: { deny: [127.0.0.0/8] } }
`);
  const port = n.port('open');
  const send = async (bytes: Buffer) => {
    const c = await tcpConnect(t, port);
    c.write(bytes);
    return (await readAll(c)).toString();
  };
  assert.equal(await send(inRecords(clientHelloMessage({ serverName: 'open.test' }))), 'up\n');
  assert.equal(await send(inRecords(clientHelloMessage({ serverName: 'closed.test' }))), '');
  const v1 = encodeProxyV1({ source: { address: '192.0.2.7', port: 1 }, destination: { address: '192.0.2.8', port: 2 } });
  assert.equal(await send(Buffer.concat([v1, inRecords(clientHelloMessage({ serverName: 'open.test' }))])), '');
  assert.deepEqual(
    n.ofType('session-rejected').map((e) => [e.route, e.reason]),
    [
      ['closed', 'acl-cidr'],
      [`tcp://127.0.0.1:${port}`, 'proxy-header-untrusted'],
    ],
  );
});

test('silent clients hold at most PENDING_HELLOS.maxPerSource waiting slots; the rest are refused at once', async (t) => {
  const clock = new ManualClock();
  const upstream = await tcpServer(t);
  const n = await startNode(t, `
routes:
  a: { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${upstream.port}" }
`, { clock });
  const silent: net.Socket[] = [];
  for (let i = 0; i < PENDING_HELLOS.maxPerSource; i++) silent.push(await tcpConnect(t, n.port('a')));
  await waitFor(() => clock.pendingTimers >= PENDING_HELLOS.maxPerSource, 'every silent client waiting');
  const extra = await tcpConnect(t, n.port('a'));
  assert.equal((await readAll(extra)).length, 0);
  assert.deepEqual(n.ofType('session-rejected').map((e) => [e.reason, e.detail]), [['limit-route-sessions', 'too many ClientHellos pending']]);
  // The deadline frees them all; a newcomer is read again.
  clock.advance(CLIENT_HELLO_TIMEOUT_MS);
  await waitFor(() => silent.every((s) => s.destroyed || s.readableEnded), 'silent clients closed');
  const c = await tcpConnect(t, n.port('a'));
  c.write(inRecords(clientHelloMessage({ serverName: 'a.test' })));
  await waitFor(() => n.ofType('session-started').length === 1);
});
