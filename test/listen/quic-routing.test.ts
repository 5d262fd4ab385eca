import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { perDatapath } from '../datapath/datapaths.js';
import { havePeer } from '../helpers/peers.js';
import { browseOverQuic, nameInInitials, stopGroup } from '../helpers/chromium-quic.js';
import { freePort, udpClient, waitFor } from '../helpers/net.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { QUIC_V1, QUIC_V2 } from '../../src/protocol/quic/initial-keys.js';
import { QUIC_HELLO_TIMEOUT_MS } from '../../src/listen/quic-demux.js';
import { clientHelloMessage } from '../protocol/tls/hello-builder.js';
import { cryptoFrame, sealInitial } from '../protocol/quic/initial-builder.js';

/** A UDP upstream that records every datagram and answers each with `tag` + the datagram. */
async function recorder(t: TestContext, tag: string, echo = true) {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (msg, r) => {
    got.push(msg);
    if (echo) sock.send(Buffer.concat([Buffer.from(tag), msg]), r.port, r.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return { port: sock.address().port, got };
}

/** alpha.test (ALPN h3) and *.beta.test on one Sluice UDP port, each to its recorder. */
async function twoNamedRoutes(t: TestContext, echo: boolean) {
  const alpha = await recorder(t, 'alpha:', echo);
  const beta = await recorder(t, 'beta:', echo);
  const n = await startNode(t, `
routes:
  alpha: { listen: "udp://127.0.0.1:0", match: { sni: [alpha.test], alpn: [h3] }, upstream: "127.0.0.1:${alpha.port}" }
  beta:  { listen: "udp://127.0.0.1:0", match: { sni: ["*.beta.test"] }, upstream: "127.0.0.1:${beta.port}" }
`);
  const port = n.port('alpha');
  assert.equal(n.port('beta'), port, 'one shared port');
  return { alpha, beta, n, port };
}

// The first two tests run once per UDP datapath (js, native); the others on the default (js).
const { test: testEach, startNode } = perDatapath();

const pad = (b: Buffer, n: number) => (b.length >= n ? b : Buffer.concat([b, Buffer.alloc(n - b.length)]));

/** A client's first flight: its ClientHello for `name` in Initial packets of about 1200 bytes, one per datagram. */
function firstFlight(name: string, version: number, dcidByte: number, bigKeyShare = false): Buffer[] {
  const hello = clientHelloMessage({ serverName: name, alpn: ['h3'], extensions: bigKeyShare ? [[51, Buffer.alloc(1300, 0x42)]] : [] });
  const dcid = Buffer.alloc(8, dcidByte);
  const out: Buffer[] = [];
  for (let at = 0, pn = 0; at < hello.length; at += 1000, pn++) {
    out.push(sealInitial({ version, dcid, scid: Buffer.from([dcidByte]), packetNumber: pn, payload: pad(cryptoFrame(at, hello.subarray(at, at + 1000)), 1160) }));
  }
  return out;
}

/** A 1-RTT (short header) packet: what the client sends once the handshake is done; never parsed by Sluice. */
const shortPacket = (tag: string) => Buffer.concat([Buffer.from([0x41, 9, 9, 9, 9]), Buffer.from(tag)]);

testEach('two QUIC clients behind one UDP port reach only their own upstream, by server name, with every datagram in order', async (t) => {
  const { alpha, beta, n, port } = await twoNamedRoutes(t, true);
  const a = await udpClient(t);
  const b = await udpClient(t);
  const aFlight = firstFlight('alpha.test', QUIC_V1, 0xaa, true); // a post-quantum-sized ClientHello: two Initials
  const bFlight = firstFlight('www.beta.test', QUIC_V2, 0xbb);
  assert.equal(aFlight.length, 2);
  assert.equal(bFlight.length, 1);
  a.send(port, aFlight[0]!);
  b.send(port, bFlight[0]!);
  assert.ok((await b.next()).toString('latin1').startsWith('beta:'), 'b answered by beta');
  a.send(port, aFlight[1]!);
  assert.ok((await a.next()).toString('latin1').startsWith('alpha:'));
  a.send(port, shortPacket('a-1rtt'));
  b.send(port, shortPacket('b-1rtt'));
  await waitFor(() => alpha.got.length === 3 && beta.got.length === 2, 'both upstreams got their clients’ datagrams');
  assert.deepEqual(alpha.got, [...aFlight, shortPacket('a-1rtt')]);
  assert.deepEqual(beta.got, [...bFlight, shortPacket('b-1rtt')]);
  assert.deepEqual(n.ofType('session-started').map((e) => e.flow.route).sort(), ['alpha', 'beta']);
  assert.equal(n.ofType('session-rejected').length, 0);
});

testEach('an unknown name and a non-QUIC datagram are refused and counted with nothing sent upstream; a default route takes them', async (t) => {
  const named = await recorder(t, 'named:');
  const fallback = await recorder(t, 'default:');
  const strict = await startNode(t, `
routes:
  a: { listen: "udp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${named.port}" }
`);
  const port = strict.port('a');
  const c = await udpClient(t);
  c.send(port, firstFlight('b.test', QUIC_V1, 1)[0]!);
  const g = await udpClient(t);
  g.send(port, Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]));
  await waitFor(() => strict.ofType('session-rejected').length === 2, 'two refusals');
  const label = `udp://127.0.0.1:${port}`;
  const rejects = strict.ofType('session-rejected').map((e) => [e.route, e.proto, e.reason, e.detail, e.client.port]);
  assert.deepEqual(rejects.sort(), [
    [label, 'udp', 'client-hello-invalid', 'quic not-quic', g.port],
    [label, 'udp', 'no-route-for-name', 'name b.test', c.port],
  ].sort());
  // The refused client stays refused for a while: no new event per datagram, nothing upstream.
  c.send(port, firstFlight('a.test', QUIC_V1, 2)[0]!);
  const ok = await udpClient(t);
  ok.send(port, firstFlight('a.test', QUIC_V1, 3)[0]!);
  await ok.next();
  assert.equal(named.got.length, 1, 'only the matching client reached the named upstream');
  assert.equal(strict.ofType('session-rejected').length, 2);

  const withDefault = await startNode(t, `
routes:
  a:   { listen: "udp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${named.port}" }
  any: { listen: "udp://127.0.0.1:0", upstream: "127.0.0.1:${fallback.port}" }
`);
  const d = await udpClient(t);
  d.send(withDefault.port('any'), Buffer.from('not quic at all'));
  assert.equal((await d.next()).toString(), 'default:not quic at all');
  const e = await udpClient(t);
  const flight = firstFlight('other.test', QUIC_V2, 4);
  e.send(withDefault.port('any'), flight[0]!);
  assert.ok((await e.next()).toString('latin1').startsWith('default:'));
  assert.deepEqual(fallback.got, [Buffer.from('not quic at all'), flight[0]!]);
  assert.equal(withDefault.ofType('session-rejected').length, 0);
});

test('a client whose ClientHello never completes is refused at the deadline, and its datagrams never reach an upstream', async (t) => {
  const clock = new ManualClock();
  const named = await recorder(t, 'named:');
  const n = await startNode(t, `
routes:
  a: { listen: "udp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${named.port}" }
`, { clock });
  const c = await udpClient(t);
  const flight = firstFlight('a.test', QUIC_V1, 5, true);
  c.send(n.port('a'), flight[0]!); // the second half never comes
  const other = await udpClient(t);
  other.send(n.port('a'), firstFlight('a.test', QUIC_V1, 6)[0]!);
  await other.next(); // the first datagram has been seen by then (same socket, in order)
  clock.advance(QUIC_HELLO_TIMEOUT_MS + 500);
  await waitFor(() => n.ofType('session-rejected').length === 1, 'the deadline refusal');
  const r = n.ofType('session-rejected')[0]!;
  assert.deepEqual([r.reason, r.client.port], ['client-hello-timeout', c.port]);
  assert.equal(named.got.length, 1);
});

test('Chromium over QUIC: its real Initial packets (a post-quantum ClientHello) reach only the upstream of the name it asked for', async (t) => {
  if (!havePeer(t, 'chromium', 'chromium')) return;
  const { alpha, beta, n, port } = await twoNamedRoutes(t, false);
  const browse = (name: string) => browseOverQuic(t, name, port);
  const a = await browse('alpha.test');
  await waitFor(() => alpha.got.length > 0, 'alpha got Chromium\'s Initials', 15_000);
  stopGroup(a.pid);
  const b = await browse('www.beta.test');
  await waitFor(() => beta.got.length > 0, 'beta got Chromium\'s Initials', 15_000);
  stopGroup(b.pid);
  // Each upstream got one client's Initials, complete and unchanged: they read back to its name.
  const alphaClients = n.ofType('session-started').filter((e) => e.flow.route === 'alpha').map((e) => e.flow.client.port);
  const betaClients = n.ofType('session-started').filter((e) => e.flow.route === 'beta').map((e) => e.flow.client.port);
  assert.ok(alphaClients.length >= 1 && betaClients.length >= 1);
  assert.ok(!alphaClients.some((p) => betaClients.includes(p)), 'no client on both routes');
  assert.equal(nameInInitials(alpha.got), 'alpha.test');
  assert.equal(nameInInitials(beta.got), 'www.beta.test');
});


test('reload: a UDP route joins and leaves a shared address by name; a pinned client keeps its route across the reload; the last one out frees the port', async (t) => {
  const a = await recorder(t, 'a:');
  const b = await recorder(t, 'b:');
  const port = await freePort('udp');
  const ups: Record<string, number> = { a: a.port, b: b.port };
  const yaml = (names: string[]) => `lifecycle: { drainTimeout: 200ms }\nroutes:\n${names.map((x) => `  ${x}: { listen: "udp://127.0.0.1:${port}", match: { sni: [${x}.test] }, upstream: "127.0.0.1:${ups[x]}" }`).join('\n')}\n`;
  const n = await startNode(t, yaml(['a']));
  const { config } = await import('../helpers/node.js');
  const ca = await udpClient(t);
  ca.send(port, firstFlight('a.test', QUIC_V1, 1)[0]!);
  assert.ok((await ca.next()).toString('latin1').startsWith('a:'));
  await n.node.reload(config(yaml(['a', 'b'])));
  const cb = await udpClient(t);
  cb.send(port, firstFlight('b.test', QUIC_V2, 2)[0]!);
  assert.ok((await cb.next()).toString('latin1').startsWith('b:'), 'the joining route takes its name');
  ca.send(port, shortPacket('still-a'));
  assert.equal((await ca.next()).toString('latin1'), `a:${shortPacket('still-a').toString('latin1')}`, 'a pinned client is not routed anew');
  await n.node.reload(config(yaml(['b'])));
  const late = await udpClient(t);
  late.send(port, firstFlight('a.test', QUIC_V1, 3)[0]!);
  await waitFor(() => n.ofType('session-rejected').some((e) => e.reason === 'no-route-for-name'), 'a.test is gone');
  await n.node.reload(config('lifecycle: { drainTimeout: 200ms }\nroutes: {}\n'));
  await waitFor(() => n.ofType('route-down').length === 2, 'both routes down');
  const again = dgram.createSocket('udp4');
  again.bind(port, '127.0.0.1');
  await once(again, 'listening');
  again.close();
});
