import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import type { TestContext } from 'node:test';
import { tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { pattern } from '../helpers/stream-pattern.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { appRoute as route, relayedPair } from './relayed-pair.js';

// While a direction's destination would block with bytes in its pipe, the native engine stops
// watching the source's readability and watches it again once the pipe drains; a bulk source's
// side is not watched for writability until a write to it would block (stream.cc SetInterest).
// What the source sent meanwhile must arrive when the destination reads again, with no later
// segment or FIN to wake the relay, and the other direction must keep flowing. Both datapaths.
const { test, startNode } = perStreamDatapath();

/** Writes `total` pattern bytes in 64 KiB chunks, honouring backpressure; never ends the socket. */
async function writePattern(s: net.Socket, total: number): Promise<void> {
  for (let at = 0; at < total; at += 65536) {
    if (!s.write(pattern(at, Math.min(65536, total - at)))) await once(s, 'drain');
  }
}

/** Counts what `s` receives and checks it against the pattern as it comes. */
function checkPattern(s: net.Socket): { got: () => number; bad: () => number } {
  let got = 0;
  let bad = -1;
  s.on('data', (d: Buffer) => {
    if (bad < 0 && !d.equals(pattern(got, d.length))) bad = got;
    got += d.length;
  });
  return { got: () => got, bad: () => bad };
}

const pairWithPausedUpstream = (t: TestContext) => relayedPair(t, startNode, true);

test('blocked source: bytes sent while the destination was full arrive once it reads, with no FIN after them', async (t) => {
  const { c, u } = await pairWithPausedUpstream(t);
  const total = 16 * 1024 * 1024;
  const sending = writePattern(c, total);
  // The upstream reads nothing: the relay's writes to it block, its pipe stays full, the client
  // keeps sending into the relay's receive buffer until TCP's window holds it back.
  await new Promise((r) => setTimeout(r, 300));
  const seen = checkPattern(u);
  u.resume();
  // The bytes first: a relay that lost its wake-up leaves the writer waiting for 'drain' forever.
  await waitFor(() => seen.got() >= total, `all ${total} bytes at the upstream (got ${seen.got()})`, 15_000);
  await sending;
  assert.equal(seen.got(), total);
  assert.equal(seen.bad(), -1);
  // A small write after the bulk, still no FIN: it is relayed on its own.
  c.write('tail');
  await waitFor(() => seen.got() === total + 4, 'the small write after the bulk', 5000);
});

test('blocked source: the other direction keeps flowing while one waits on a full destination', async (t) => {
  const { c, u } = await pairWithPausedUpstream(t);
  const sending = writePattern(c, 64 * 1024 * 1024);
  sending.catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  // The client -> upstream direction is blocked now (upstream not reading); replies still pass.
  let replies = '';
  c.on('data', (d: Buffer) => (replies += d.toString()));
  for (let k = 0; k < 5; k++) {
    u.write(`r${k};`);
    await waitFor(() => replies.endsWith(`r${k};`), `reply ${k} while the other direction is blocked`, 5000);
  }
  assert.equal(replies, 'r0;r1;r2;r3;r4;');
  c.destroy();
});

test('blocked source: the upstream -> client direction too, then a FIN after the backlog', async (t) => {
  const side: { sock?: net.Socket } = {};
  const up = await tcpServer(t, (s) => {
    side.sock = s;
  });
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('app'));
  c.pause();
  await waitFor(() => side.sock !== undefined, 'upstream accepted');
  const u = side.sock!;
  const total = 16 * 1024 * 1024;
  const sending = writePattern(u, total);
  await new Promise((r) => setTimeout(r, 300));
  const seen = checkPattern(c);
  const ended = once(c, 'end');
  c.resume();
  await sending;
  u.end();
  await ended;
  assert.equal(seen.got(), total);
  assert.equal(seen.bad(), -1);
  assert.equal(n.ofType('session-ended').length, 0, 'the client has not closed its direction');
});

test('blocked source: a side first read in bulk is written to later, through a reader that stalls and resumes', async (t) => {
  const side: { sock?: net.Socket } = {};
  const up = await tcpServer(t, (s) => {
    side.sock = s;
  });
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('app'));
  await waitFor(() => side.sock !== undefined, 'upstream accepted');
  const u = side.sock!;
  // Bulk client -> upstream first: the client's side is read in bulk and nothing writes to it.
  const atUpstream = checkPattern(u);
  await writePattern(c, 8 * 1024 * 1024);
  await waitFor(() => atUpstream.got() === 8 * 1024 * 1024, 'the client bulk at the upstream', 15_000);
  // Now the other way into a client that reads nothing for a while: the relay's writes to the
  // client block, and only the client's writability can tell it to go on.
  c.pause();
  const total = 16 * 1024 * 1024;
  const sending = writePattern(u, total);
  await new Promise((r) => setTimeout(r, 300));
  const seen = checkPattern(c);
  c.resume();
  await waitFor(() => seen.got() >= total, `all ${total} bytes at the client (got ${seen.got()})`, 15_000);
  await sending;
  assert.equal(seen.got(), total);
  assert.equal(seen.bad(), -1);
  assert.equal(atUpstream.bad(), -1);
  assert.equal(n.ofType('session-ended').length, 0, 'no FIN was sent either way');
});
