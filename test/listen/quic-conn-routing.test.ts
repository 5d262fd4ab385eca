import { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { perDatapath } from '../datapath/datapaths.js';
import { udpClient, waitFor } from '../helpers/net.js';
import { QUIC_V1 } from '../../src/protocol/quic/initial-keys.js';
import { clientHelloMessage } from '../protocol/tls/hello-builder.js';
import { cryptoFrame, sealInitial } from '../protocol/quic/initial-builder.js';

/* QUIC connection tracking through real sockets (docs/sni.md, "Connection IDs"). */

const { test, startNode } = perDatapath();

/**
 * A QUIC-like upstream: it records every datagram, answers a client's first one with a long header
 * carrying its own connection ID `serverCid` (as a server's Initial does: DCID = the client's SCID),
 * and later ones with `tag`.
 */
async function server(t: TestContext, serverCid: Buffer, tag: string) {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  const seen = new Set<number>();
  sock.on('message', (msg, r) => {
    got.push(msg);
    if (seen.has(r.port)) return void sock.send(Buffer.from(tag), r.port, r.address);
    seen.add(r.port);
    const clientScid = msg.subarray(7 + msg[5]!, 7 + msg[5]! + msg[6 + msg[5]!]!);
    sock.send(longHeader(0, clientScid, serverCid), r.port, r.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return { port: sock.address().port, got };
}

function longHeader(type: number, dcid: Buffer, scid: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xc0 | (type << 4), 0, 0, 0, 1, dcid.length]), dcid, Buffer.from([scid.length]), scid, Buffer.from([0x40, 0x20]), Buffer.alloc(32, 0xee)]);
}

function initial(name: string, dcid: Buffer, scid: Buffer): Buffer {
  const frame = cryptoFrame(0, clientHelloMessage({ serverName: name, alpn: ['h3'] }));
  return sealInitial({ version: QUIC_V1, dcid, scid, packetNumber: 0, payload: Buffer.concat([frame, Buffer.alloc(1160 - frame.length)]) });
}

const short = (dcid: Buffer, text: string) => Buffer.concat([Buffer.from([0x41]), dcid, Buffer.from(text)]);

test('one client socket, two QUIC connections to two names behind one Sluice UDP port: each reaches its own upstream, by DCID and by the server\'s connection IDs; a new client address with a known ID follows its connection', async (t) => {
  const [sa, sb] = [Buffer.alloc(4, 0xa2), Buffer.alloc(5, 0xb2)];
  const alpha = await server(t, sa, 'alpha');
  const beta = await server(t, sb, 'beta');
  const n = await startNode(t, `
routes:
  alpha: { listen: "udp://127.0.0.1:0", match: { sni: [alpha.test] }, upstream: "127.0.0.1:${alpha.port}" }
  beta:  { listen: "udp://127.0.0.1:0", match: { sni: [beta.test] }, upstream: "127.0.0.1:${beta.port}" }
`);
  const port = n.port('alpha');
  const a = await udpClient(t);
  const ia = initial('alpha.test', Buffer.alloc(8, 0xa1), Buffer.from([0xa0]));
  a.send(port, ia);
  assert.ok((await a.next()).equals(longHeader(0, Buffer.from([0xa0]), sa)), "alpha's server Initial came back");
  const ib = initial('beta.test', Buffer.alloc(8, 0xb1), Buffer.from([0xb0]));
  a.send(port, ib);
  assert.ok((await a.next()).equals(longHeader(0, Buffer.from([0xb0]), sb)), "beta's server Initial came back, to the same client socket");
  a.send(port, short(sa, 'to-alpha'));
  assert.equal((await a.next()).toString(), 'alpha');
  a.send(port, short(sb, 'to-beta'));
  assert.equal((await a.next()).toString(), 'beta');
  a.send(port, longHeader(2, sa, Buffer.from([0xa0])));
  assert.equal((await a.next()).toString(), 'alpha');

  // The client's address changes (NAT rebinding): its packets carry the servers' IDs and follow their connections.
  const b = await udpClient(t);
  b.send(port, short(sa, 'moved-alpha'));
  b.send(port, longHeader(2, sb, Buffer.from([0xb0])));
  await waitFor(() => alpha.got.length === 4 && beta.got.length === 3, 'the moved packets reached their upstreams');
  assert.deepEqual(alpha.got.map((g) => g.subarray(0, 12)), [ia, short(sa, 'to-alpha'), longHeader(2, sa, Buffer.from([0xa0])), short(sa, 'moved-alpha')].map((g) => g.subarray(0, 12)));
  assert.deepEqual(beta.got.map((g) => g.subarray(0, 12)), [ib, short(sb, 'to-beta'), longHeader(2, sb, Buffer.from([0xb0]))].map((g) => g.subarray(0, 12)));
  const sessions = n.ofType('session-started').map((e) => `${e.flow.route} ${e.flow.client.port === a.port ? 'a' : e.flow.client.port === b.port ? 'b' : '?'}`);
  assert.deepEqual(sessions.sort(), ['alpha a', 'alpha b', 'beta a', 'beta b'], 'each connection its own session, per route and address');

  // Not QUIC from a new address: refused and counted, nothing upstream.
  const c = await udpClient(t);
  c.send(port, Buffer.from([0x00, 0x01, 0x02, 0x03]));
  await waitFor(() => n.ofType('session-rejected').length === 1, 'refused');
  assert.deepEqual(n.ofType('session-rejected').map((e) => [e.reason, e.detail]), [['client-hello-invalid', 'quic not-quic']]);
  assert.deepEqual([alpha.got.length, beta.got.length], [4, 3]);
});
