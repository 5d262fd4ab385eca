import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import { readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { appRoute as route, relayedPair } from './relayed-pair.js';

// Small reads pass through the native engine's buffer (recv/send) and large ones are spliced;
// a pair whose two FINs arrive together is closed without a shutdown. What the peers see must be
// the same as on js: every byte in order, each FIN after the other side's bytes. Both datapaths.
const { test, startNode } = perStreamDatapath();


/** Writes `total` bytes of a counting pattern in chunks of 1..6000 bytes (small and large reads mixed), honouring backpressure. */
async function writeMixed(s: net.Socket, total: number): Promise<string> {
  const hash = createHash('sha256');
  let sent = 0;
  let k = 0;
  while (sent < total) {
    const size = Math.min(total - sent, k % 7 === 0 ? 6000 : 1 + ((k * 733) % 1500));
    const chunk = Buffer.alloc(size, k & 255);
    if (size >= 4) chunk.writeUInt32BE(k >>> 0, 0);
    hash.update(chunk);
    sent += size;
    k++;
    if (!s.write(chunk)) await once(s, 'drain');
    else if (k % 50 === 0) await new Promise((r) => setImmediate(r)); // let the relay see small reads too
  }
  s.end();
  return hash.digest('hex');
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const throughPausedUpstream = (t: TestContext) => relayedPair(t, startNode, true);

test('tcp small reads: small and large writes into a reader paused for a while arrive whole and in order, both ways', async (t) => {
  const { n, c, u } = await throughPausedUpstream(t);
  const total = 3 * 1024 * 1024;
  const clientSent = writeMixed(c, total);
  // The upstream reads nothing for a while: the relay's writes to it block and must keep what they hold.
  await new Promise((r) => setTimeout(r, 300));
  const upGot = readAll(u, 20_000);
  u.resume();
  const upstreamSent = writeMixed(u, total);
  const clientGot = readAll(c, 20_000);
  const [a, b, fromClient, fromUpstream] = await Promise.all([upGot, clientGot, clientSent, upstreamSent]);
  assert.equal(a.length, total);
  assert.equal(sha(a), fromClient);
  assert.equal(b.length, total);
  assert.equal(sha(b), fromUpstream);
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  const end = n.ofType('session-ended')[0]!;
  assert.equal(end.counters.bytesFromClient, total);
  assert.equal(end.counters.bytesToClient, total);
  assert.ok(end.reason === 'client-closed' || end.reason === 'upstream-closed', end.reason);
});

test('tcp small reads: small writes, read one by one, into a stalled reader until the client is held back, then every byte in order', async (t) => {
  const { n, c, u } = await throughPausedUpstream(t);
  const hash = createHash('sha256');
  let sent = 0;
  // 500-byte writes with a loop turn after each: the relay reads them as small reads (through its
  // buffer) and, once the upstream stops taking bytes, must keep what it read but could not send.
  for (let k = 0; sent < 64 * 1024 * 1024; k++) {
    const chunk = Buffer.alloc(500, k & 255);
    chunk.writeUInt32BE(k >>> 0, 0);
    hash.update(chunk);
    sent += chunk.length;
    if (!c.write(chunk)) break; // held back: every buffer on the way is full
    await new Promise((r) => setImmediate(r));
  }
  c.end();
  const got = readAll(u, 20_000);
  u.resume();
  const all = await got;
  assert.equal(all.length, sent);
  assert.equal(sha(all), hash.digest('hex'));
  assert.ok(sent < 64 * 1024 * 1024, 'the client was held back');
});

test('tcp small reads: both ends sending their last bytes and FIN at once each get the other side\'s bytes, then its FIN', async (t) => {
  const upSide: { sock?: net.Socket } = {};
  const up = await tcpServer(t, (s) => {
    upSide.sock = s;
    s.once('data', () => s.write('ready'));
  });
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('app'));
  c.write('hello');
  await once(c, 'data');
  const u = upSide.sock!;
  const clientGot = readAll(c);
  const upGot = readAll(u);
  // In one turn of the loop the engine shares: both FINs reach the relay together.
  c.end('bye from client');
  u.end('bye from upstream');
  assert.equal((await clientGot).toString(), 'bye from upstream');
  assert.equal((await upGot).toString(), 'bye from client');
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  const end = n.ofType('session-ended')[0]!;
  assert.ok(end.reason === 'client-closed' || end.reason === 'upstream-closed', end.reason);
  assert.equal(end.counters.bytesFromClient, 5 + 'bye from client'.length);
  assert.equal(end.counters.bytesToClient, 5 + 'bye from upstream'.length);
});

test('tcp small reads: a client FIN alone is forwarded as a FIN while the upstream keeps sending small replies', async (t) => {
  const up = await tcpServer(t, (s) => {
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('end', () => {
      // Answers after the client's FIN, in small pieces, then closes: the half-closed direction stays open.
      let i = 0;
      const tick = () => {
        if (i === 5) return void s.end(`got:${got}`);
        s.write(`r${i++};`);
        setTimeout(tick, 5);
      };
      tick();
    });
  });
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('app'));
  c.end('question');
  assert.equal((await readAll(c)).toString(), 'r0;r1;r2;r3;r4;got:question');
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  assert.equal(n.ofType('session-ended')[0]!.reason, 'client-closed');
});
