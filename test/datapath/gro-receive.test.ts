import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath, type NativeDatapathOptions } from '../../src/datapath/native/native-datapath.js';
import type { UdpListener } from '../../src/datapath/udp-datapath.js';
import { waitFor } from '../helpers/net.js';

// Coalesced receive (native/src/gro.cc): runs sent with UDP_SEGMENT by one engine arrive at another
// engine's listener as coalesced messages, which the batch splits back into the same datagrams.

const loaded = loadNativeBinding();
const skip = !loaded.ok ? `native datapath unavailable: ${loaded.reason}` : !loaded.layout.gso ? 'this kernel has no UDP_SEGMENT' : false;

function datapath(t: TestContext, opts: NativeDatapathOptions = {}): NativeDatapath {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout, opts);
  t.after(() => dp.destroy());
  return dp;
}

type Got = { buf: Buffer; address: string; port: number };

async function listener(t: TestContext, dp: NativeDatapath, onGot?: (g: Got, all: Got[]) => void) {
  const got: Got[] = [];
  const l: UdpListener = await dp.listen('127.0.0.1', 0, {
    onDatagram: (buf, address, port) => {
      const g = { buf: Buffer.from(buf), address, port };
      got.push(g);
      onGot?.(g, got);
    },
    onSendError: () => {},
  });
  t.after(() => l.close());
  return { l, got };
}

/** `n` datagrams of `size` bytes numbered in their first two bytes, the last one `last` bytes. */
function burst(n: number, size: number, last: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const b = Buffer.alloc(i === n - 1 ? last : size, i & 0xff);
    b.writeUInt16BE(i, 0);
    return b;
  });
}

test('coalesced receive: a burst of 1,000 sent as GSO runs arrives as the same datagrams, in order, from the sender, past a full batch', { skip }, async (t) => {
  const from = datapath(t);
  const to = datapath(t);
  const a = await listener(t, from);
  const b = await listener(t, to);
  const sent = burst(1000, 97, 41);
  // Staged outside a batch: flushed in one microtask as runs of 64 equal-sized datagrams, all
  // queued at b's socket before its engine harvests (this thread runs both engines).
  for (const x of sent) a.l.send(x, b.l.local.port, '127.0.0.1');
  await waitFor(() => b.got.length === sent.length, `${sent.length} datagrams (got ${b.got.length})`);
  assert.deepEqual(b.got.map((g) => g.buf.length), sent.map((x) => x.length));
  assert.ok(b.got.every((g, i) => g.buf.equals(sent[i]!)), 'same bytes, same order');
  assert.ok(b.got.every((g) => g.address === '127.0.0.1' && g.port === a.l.local.port), 'each datagram from the sender');
  const s = to.groStats();
  assert.ok(s.messages >= 1, `coalesced messages split: ${JSON.stringify(s)}`);
  assert.ok(s.datagrams > s.messages && s.datagrams <= sent.length, JSON.stringify(s));
  // 1,000 datagrams are more than a batch's 128 slots: some were carried to the next harvest.
  assert.ok(s.carried > 0, `carried: ${JSON.stringify(s)}`);
});

test('coalesced receive: off, the kernel splits the runs and nothing is coalesced; the bytes are the same', { skip }, async (t) => {
  const from = datapath(t);
  const to = datapath(t, { gro: false });
  const a = await listener(t, from);
  const b = await listener(t, to);
  const sent = burst(300, 200, 200);
  for (const x of sent) a.l.send(x, b.l.local.port, '127.0.0.1');
  await waitFor(() => b.got.length === sent.length, `${sent.length} datagrams (got ${b.got.length})`);
  assert.ok(b.got.every((g, i) => g.buf.equals(sent[i]!)), 'same bytes, same order');
  assert.deepEqual(to.groStats(), { messages: 0, datagrams: 0, carried: 0 });
});

test('coalesced receive: a listener closed with datagrams still carried gets none of them, and a new socket gets only its own', { skip }, async (t) => {
  const from = datapath(t);
  const to = datapath(t);
  const a = await listener(t, from);
  let closedAt = -1;
  const b = await listener(t, to, (_g, all) => {
    if (all.length === 10) {
      closedAt = all.length;
      b.l.close();
    }
  });
  const sent = burst(640, 64, 64);
  for (const x of sent) a.l.send(x, b.l.local.port, '127.0.0.1');
  await waitFor(() => closedAt === 10, 'the close');
  // A new listener (it may take the closed one's id once the batch is over) gets only what is sent to it.
  const c = await listener(t, to);
  a.l.send(Buffer.from('fresh'), c.l.local.port, '127.0.0.1');
  await waitFor(() => c.got.length === 1, 'the new listener\'s datagram');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(b.got.length, 10, 'nothing after the close');
  assert.deepEqual(c.got.map((g) => g.buf.toString()), ['fresh']);
  assert.ok(to.groStats().carried > 0, 'datagrams were carried when the listener closed');
});
