import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readProxyHeader, sniffFirstBytes } from '../../src/listen/proxy-header-reader.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A connected pair on loopback: `server` is the accepted side, paused as a route gets it. */
async function pair(t: import('node:test').TestContext): Promise<{ client: net.Socket; server: net.Socket }> {
  const srv = net.createServer({ pauseOnConnect: true });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const accepted = once(srv, 'connection');
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const [server] = (await accepted) as [net.Socket];
  t.after(() => {
    client.destroy();
    server.destroy();
    srv.close();
  });
  return { client, server };
}

test('readProxyHeader: the header deadline runs on the injected clock (silent sender: missing; partial header: invalid)', async (t) => {
  const clock = new ManualClock();
  const silent = await pair(t);
  let outcome: unknown;
  const r1 = readProxyHeader(silent.server, clock, 2000, 4096).then((o) => (outcome = o));
  await new Promise((r) => setImmediate(r));
  assert.equal(outcome, undefined);
  clock.advance(2000);
  await r1;
  assert.deepEqual(outcome, { ok: false, reason: 'proxy-header-missing' });

  const partial = await pair(t);
  const r2 = readProxyHeader(partial.server, clock, 2000, 4096);
  partial.client.write('PROXY TCP4 ');
  await once(partial.server, 'data');
  clock.advance(2000);
  assert.deepEqual(await r2, { ok: false, reason: 'proxy-header-invalid' });
  assert.equal(clock.pendingTimers, 0);
});

test('readProxyHeader: a complete header cancels the deadline on the injected clock and leaves the payload unread', async (t) => {
  const clock = new ManualClock();
  const p = await pair(t);
  const r = readProxyHeader(p.server, clock, 2000, 4096);
  p.client.write('PROXY TCP4 203.0.113.1 192.0.2.1 1111 80\r\nhello');
  const o = await r;
  assert.ok(o.ok && o.header.addresses?.source.address === '203.0.113.1');
  assert.equal(clock.pendingTimers, 0);
  assert.equal((p.server.read() as Buffer).toString(), 'hello');
});

test('sniffFirstBytes: the untrusted wait runs on the injected clock and resolves undecided for a silent client', async (t) => {
  const clock = new ManualClock();
  const p = await pair(t);
  let seen: unknown;
  const r = sniffFirstBytes(p.server, { clock, timeoutMs: 50 }).then((v) => (seen = v));
  await new Promise((res) => setImmediate(res));
  assert.equal(seen, undefined);
  clock.advance(50);
  await r;
  assert.equal(seen, 'undecided');
});
