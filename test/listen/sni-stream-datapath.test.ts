import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { decodeProxyHeader } from '../../src/protocol/proxy-protocol/index.js';
import { clientHelloMessage, inRecords } from '../protocol/tls/hello-builder.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';

// Routes on a shared listener (routing by TLS name) get Node sockets from it: they relay on the js
// stream datapath whatever the node's is, beside the node's plain routes on its own datapath.
const { test, startNode, datapathOf } = perStreamDatapath();

/** An upstream that answers `<tag>:` and the bytes it got once the client's FIN arrives. */
async function answering(t: Parameters<typeof tcpServer>[0], tag: string) {
  const received: Buffer[] = [];
  const server = await tcpServer(t, (s) => {
    s.on('data', (d) => received.push(d));
    s.on('end', () => s.end(Buffer.concat([Buffer.from(`${tag}:`), ...received])));
  });
  return { ...server, received };
}

test('a shared listener by name relays both ways beside a plain route on the node\'s stream datapath', async (t) => {
  const a = await answering(t, 'a');
  const b = await answering(t, 'b');
  const plain = await answering(t, 'plain');
  const n = await startNode(t, `
routes:
  a: { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${a.port}" }
  b: { listen: "tcp://127.0.0.1:0", match: { sni: [b.test] }, upstream: "127.0.0.1:${b.port}" }
  plain: { listen: "tcp://127.0.0.2:0", upstream: "127.0.0.1:${plain.port}" }
`);
  assert.equal(n.node.streamDatapathKind, datapathOf(t)!.kind);
  assert.equal(n.port('a'), n.port('b'));
  for (const [name, tag] of [['a.test', 'a'], ['b.test', 'b']] as const) {
    const hello = inRecords(clientHelloMessage({ serverName: name }), [40]);
    const c = await tcpConnect(t, n.port('a'));
    c.end(Buffer.concat([hello, Buffer.from('after')]));
    const got = await readAll(c);
    assert.ok(got.equals(Buffer.concat([Buffer.from(`${tag}:`), hello, Buffer.from('after')])), `${name}: the ClientHello and what followed, answered`);
  }
  // Its own address: a plain route on the shared address would be that listener's default route.
  const p = net.connect({ port: n.port('plain'), host: '127.0.0.2', allowHalfOpen: true });
  t.after(() => p.destroy());
  await once(p, 'connect');
  p.end('plain bytes');
  assert.equal((await readAll(p)).toString(), 'plain:plain bytes');
  await waitFor(() => n.ofType('session-ended').length === 3, 'three sessions ended');
  const ended = n.ofType('session-ended').map((e) => [e.flow.route, e.counters.bytesFromClient, e.counters.bytesToClient] as const).sort();
  const helloLen = (name: string) => inRecords(clientHelloMessage({ serverName: name }), [40]).length;
  assert.deepEqual(ended, [
    ['a', helloLen('a.test') + 5, 2 + helloLen('a.test') + 5],
    ['b', helloLen('b.test') + 5, 2 + helloLen('b.test') + 5],
    ['plain', 11, 17],
  ]);
});

test('a route on a shared listener sends its PROXY header first and counts live bytes on a node with either stream datapath', async (t) => {
  const received: Buffer[] = [];
  const up = await tcpServer(t, (s) => s.on('data', (d) => received.push(d)));
  const n = await startNode(t, `
routes:
  a: { listen: "tcp://127.0.0.1:0", match: { sni: [a.test] }, upstream: "127.0.0.1:${up.port}", proxyProtocol: { send: v1 } }
`);
  const hello = inRecords(clientHelloMessage({ serverName: 'a.test' }));
  const c = await tcpConnect(t, n.port('a'));
  c.write(Buffer.concat([hello, Buffer.from('x')]));
  await waitFor(() => Buffer.concat(received).includes('x'), 'bytes upstream');
  const got = Buffer.concat(received);
  const r = decodeProxyHeader(got);
  assert.ok(r.kind === 'ok' && r.header.addresses?.source.port === c.localPort, 'the client\'s own address in the header');
  assert.ok(r.kind === 'ok' && got.subarray(r.length).equals(Buffer.concat([hello, Buffer.from('x')])));
  const live = n.node.route('a')!.sessions();
  assert.equal(live.length, 1);
  assert.equal(live[0]!.state, 'open');
  assert.equal(live[0]!.bytesFromClient, hello.length + 1);
});
