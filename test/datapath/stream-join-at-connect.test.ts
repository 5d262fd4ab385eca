import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { nativeStreamCase } from './stream-datapaths.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { streamBindingOf, type NativeStreamBinding } from '../../src/datapath/native/stream-binding.js';
import type { PairEnd, StreamConn } from '../../src/datapath/stream-datapath.js';
import { readAll, tcpServer, waitFor } from '../helpers/net.js';
import { startNode } from '../helpers/node.js';

// The join at connect (docs/datapath.md, "Joined at connect"): a dial that offers its client
// (DialJoin) is joined to it by the engine when the dial succeeds, before JavaScript hears of the
// answer, so a route's connection costs one N-API call for the dial and none for the join.
const skip = nativeStreamCase().skip ?? false;

/** A native stream datapath of its own whose binding counts the calls made through it. */
function countingDatapath(): { dp: NativeStreamDatapath; calls: Map<string, number> } {
  const loaded = loadNativeBinding();
  if (!loaded.ok) throw new Error(`CI=true: the native addon must load: ${loaded.reason}`);
  const b = streamBindingOf(loaded.binding);
  if (typeof b === 'string') throw new Error(b);
  const calls = new Map<string, number>();
  const counted: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(b)) {
    const v = (b as unknown as Record<string, unknown>)[name];
    if (typeof v !== 'function' || !name.startsWith('stream')) continue;
    counted[name] = (...args: unknown[]) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return (v as (...a: unknown[]) => unknown)(...args);
    };
  }
  return { dp: new NativeStreamDatapath(counted as unknown as NativeStreamBinding), calls };
}

test('native stream engine: a dial offered the join is joined at connect: no streamPipe call, bytes and FINs both ways, one end event', { skip }, async (t) => {
  const { dp, calls } = countingDatapath();
  t.after(() => dp.destroy());
  const up = await tcpServer(t); // echo with half-close
  const ends: PairEnd[] = [];
  const joinedSeen: boolean[] = [];
  const listener = await dp.listen('127.0.0.1', 0, (down) => {
    dp.dial({ address: '127.0.0.1', port: up.port, family: 4 }, 2000, (err, upConn) => {
      if (err) return down.destroy();
      joinedSeen.push(upConn!.joined === true);
      if (!dp.pipe(down, upConn!, 0, (e) => ends.push(e))) throw new Error('not joined in the datapath');
    }, { down, idleTimeoutMs: 0 });
  });
  t.after(() => listener.close());

  const n = 5;
  for (let i = 0; i < n; i++) {
    const c = net.connect({ port: listener.local.port, host: '127.0.0.1', allowHalfOpen: true });
    c.end(`hello ${i}`); // the client's FIN reaches the echo, whose FIN comes back
    assert.equal((await readAll(c)).toString(), `hello ${i}`);
    c.destroy();
  }
  await waitFor(() => ends.length === n, 'every pair ended');
  assert.deepEqual(joinedSeen, Array(n).fill(true));
  assert.deepEqual(
    ends.map((e) => [e.reason, e.bytesFromClient, e.bytesToClient]),
    Array.from({ length: n }, (_, i) => ['client-closed', `hello ${i}`.length, `hello ${i}`.length]),
  );
  assert.equal(calls.get('streamDialJoin'), n, 'one dial call per connection');
  assert.equal(calls.get('streamDial') ?? 0, 0);
  assert.equal(calls.get('streamPipe') ?? 0, 0, 'no join call: the engine joined at connect');
});

test('native stream engine: a client closed while its dial is in flight is not joined; the dial answers with a held connection', { skip }, async (t) => {
  const { dp } = countingDatapath();
  t.after(() => dp.destroy());
  // An upstream that accepts late: the dial is in flight while the client goes.
  const upstream = net.createServer({ pauseOnConnect: true }, (s) => s.on('error', () => {}));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => upstream.close());
  const port = (upstream.address() as net.AddressInfo).port;
  const answered = new Promise<{ err?: Error; conn?: StreamConn; downDestroyed: boolean }>((resolve) => {
    void dp.listen('127.0.0.1', 0, (down) => {
      dp.dial({ address: '127.0.0.1', port, family: 4 }, 2000, (err, conn) => resolve({ err, conn, downDestroyed: down.destroyed }), { down, idleTimeoutMs: 0 });
      down.destroy(); // gone before the dial's answer is delivered
    }).then((l) => {
      t.after(() => l.close());
      net.connect(l.local.port, '127.0.0.1').on('error', () => {});
    });
  });
  const r = await answered;
  assert.equal(r.err, undefined);
  assert.equal(r.downDestroyed, true);
  assert.equal(r.conn!.joined, false, 'the dialed connection was not joined');
  assert.equal(r.conn!.destroyed, false, 'still held: the caller decides');
  // Held, it can still be written to and closed like any dialed connection.
  assert.equal(r.conn!.writeFirst(Buffer.from('x')), true);
  r.conn!.destroy();
  assert.equal(r.conn!.destroyed, true);
});

test('plain TCP route on the native datapath: dialed and joined with one N-API call per connection; a route sending PROXY headers is not joined at connect', { skip }, async (t) => {
  const { dp, calls } = countingDatapath();
  t.after(() => dp.destroy());
  const got: Buffer[] = [];
  const up = await tcpServer(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      got.push(Buffer.concat(chunks));
      s.end('reply');
    });
  });
  const n = await startNode(
    t,
    `
routes:
  plain:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
  headed:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { send: v1 }
`,
    { streamDatapath: dp },
  );
  const once1 = async (route: string) => {
    const c = net.connect({ port: n.port(route), host: '127.0.0.1', allowHalfOpen: true });
    c.end('ping');
    const reply = await readAll(c);
    c.destroy();
    return reply.toString();
  };
  assert.equal(await once1('plain'), 'reply');
  assert.equal(await once1('plain'), 'reply');
  assert.equal(calls.get('streamDialJoin'), 2);
  assert.equal(calls.get('streamPipe') ?? 0, 0);
  assert.equal(await once1('headed'), 'reply');
  assert.equal(calls.get('streamDialJoin'), 2, 'a header to send first: dialed without the join');
  assert.equal(calls.get('streamPipe'), 1);
  assert.equal(got[0]!.toString(), 'ping');
  assert.match(got[2]!.toString(), /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\nping$/);
  // The same records as a join by streamPipe: started, dial-ok and ended with the counters.
  await waitFor(() => n.ofType('session-ended').length === 3, 'three sessions ended');
  const ended = n.ofType('session-ended');
  assert.equal(n.ofType('session-started').length, 3);
  assert.deepEqual(
    ended.map((e) => [e.reason, e.counters.bytesFromClient, e.counters.bytesToClient]),
    [
      ['client-closed', 4, 5],
      ['client-closed', 4, 5],
      ['client-closed', 4, 5],
    ],
  );
});
