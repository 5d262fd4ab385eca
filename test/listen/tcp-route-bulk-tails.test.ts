import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { waitFor } from '../helpers/net.js';
import { pattern } from '../helpers/stream-pattern.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { relayedPair } from './relayed-pair.js';

// The tail of a long bulk run, with nothing after it (no FIN, no later bytes), and single bytes
// right after such runs must arrive on their own. An engine that waits for more than the bytes at
// hand (a receive low-water mark, docs/datapath.md "Several bulk streams": built, measured, not
// kept; without its timer this test failed on the first keystroke) or misreads a short read as
// "more to come" strands them. Both datapaths; the bounds are the waits' generous timeouts, not
// speed checks.
const { test, startNode } = perStreamDatapath();

/** Writes `total` bytes of the pattern from `from` in 256 KiB chunks as fast as backpressure allows. */
async function writeBulk(s: net.Socket, from: number, total: number): Promise<void> {
  for (let off = 0; off < total; off += 256 * 1024) {
    if (!s.write(pattern(from + off, Math.min(256 * 1024, total - off)))) await once(s, 'drain');
  }
}

/** Collects what `s` receives; `until(n)` resolves once n bytes in all have come (rejects after timeoutMs). */
function collector(s: net.Socket) {
  const chunks: Buffer[] = [];
  let got = 0;
  s.on('data', (d: Buffer) => {
    chunks.push(d);
    got += d.length;
  });
  return {
    get length() {
      return got;
    },
    bytes: () => Buffer.concat(chunks),
    until: (n: number, what: string, timeoutMs = 20_000) => waitFor(() => got >= n, `${what}: ${n} bytes (got ${got})`, timeoutMs),
  };
}

const MiB = 1024 * 1024;

test('tcp bulk tails: a long bulk run and its short tail with nothing after it arrive, both ways, then single bytes', async (t) => {
  const { n, c, u } = await relayedPair(t, startNode);
  const atUp = collector(u);
  const atClient = collector(c);

  // Client -> upstream: 16 MiB, then a tail far below any mark, and nothing more (no FIN).
  const bulk = 16 * MiB;
  const tail = 777;
  await writeBulk(c, 0, bulk);
  c.write(pattern(bulk, tail));
  await atUp.until(bulk + tail, 'client bulk and tail at the upstream');
  assert.equal(atUp.length, bulk + tail);
  assert.ok(atUp.bytes().equals(pattern(0, bulk + tail)), 'client -> upstream bytes in order');

  // Upstream -> client the same way, with a tail of one byte.
  await writeBulk(u, 0, bulk);
  u.write(pattern(bulk, 1));
  await atClient.until(bulk + 1, 'upstream bulk and tail at the client');
  assert.equal(atClient.length, bulk + 1);
  assert.ok(atClient.bytes().equals(pattern(0, bulk + 1)), 'upstream -> client bytes in order');

  // Keystrokes after the bursts: one byte at a time, each answered before the next is sent.
  for (let k = 0; k < 5; k++) {
    c.write(Buffer.from([k]));
    await atUp.until(bulk + tail + k + 1, `keystroke ${k} at the upstream`);
    u.write(Buffer.from([100 + k]));
    await atClient.until(bulk + 1 + k + 1, `echo ${k} at the client`);
  }
  assert.deepEqual([...atUp.bytes().subarray(bulk + tail)], [0, 1, 2, 3, 4]);
  assert.deepEqual([...atClient.bytes().subarray(bulk + 1)], [100, 101, 102, 103, 104]);

  c.end();
  u.end();
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  const end = n.ofType('session-ended')[0]!;
  assert.equal(end.counters.bytesFromClient, bulk + tail + 5);
  assert.equal(end.counters.bytesToClient, bulk + 1 + 5);
});

test('tcp bulk tails: bursts with pauses between them, each ending in a short tail, arrive whole', async (t) => {
  const { n, c, u } = await relayedPair(t, startNode);
  const atUp = collector(u);
  // Each burst must arrive whole before the next is sent: nothing pushes its tail but itself.
  let sent = 0;
  for (const size of [3 * MiB + 5, 2 * MiB + 60_000, 4 * MiB + 1, 1 * MiB + 3]) {
    await writeBulk(c, sent, size);
    sent += size;
    await atUp.until(sent, `burst ending at ${sent}`);
  }
  assert.ok(atUp.bytes().equals(pattern(0, sent)), 'bytes in order');
  c.end();
  u.end();
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  assert.equal(n.ofType('session-ended')[0]!.counters.bytesFromClient, sent);
});
