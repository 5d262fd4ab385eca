import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import type { UdpListener } from '../../src/datapath/udp-datapath.js';
import { waitFor } from '../helpers/net.js';

// Coalesced receives (native/src/gro.cc): a run sent with UDP_SEGMENT arrives as one kernel
// buffer at a socket that asked for it, and the harvest cuts it back into the same datagrams.

const loaded = loadNativeBinding();
const skip = !loaded.ok ? `native datapath unavailable: ${loaded.reason}` : !loaded.layout.gso ? 'this kernel has no UDP_SEGMENT: nothing is coalesced' : false;

interface Got {
  readonly buf: Buffer;
  readonly port: number;
}

/** Two engines of their own, destroyed after the test. */
function engines(t: TestContext, receiverOpts: { gro?: boolean } = {}) {
  if (!loaded.ok) throw new Error('unreachable');
  const sender = new NativeDatapath(loaded.binding, loaded.layout);
  const receiver = new NativeDatapath(loaded.binding, loaded.layout, receiverOpts);
  t.after(() => {
    sender.destroy();
    receiver.destroy();
  });
  return { sender, receiver };
}

async function pair(t: TestContext, receiverOpts: { gro?: boolean } = {}) {
  const { sender, receiver } = engines(t, receiverOpts);
  const got: Got[] = [];
  const rx = await receiver.listen('127.0.0.1', 0, { onDatagram: (buf, _address, port) => void got.push({ buf: Buffer.from(buf), port }), onSendError: () => {} });
  const tx = await sender.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
  return { sender, receiver, rx, tx, got };
}

/** Datagram i: `size` bytes (the last of each run of `run` one byte shorter), its number in the first 4. */
function datagrams(count: number, size: number, run: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = Buffer.alloc(i % run === run - 1 ? size - 1 : size, i & 0xff);
    b.writeUInt32BE(i, 0);
    out.push(b);
  }
  return out;
}

function sendAll(tx: UdpListener, port: number, bufs: Buffer[]): void {
  // Staged in one tick: the flush sends runs to one destination as UDP_SEGMENT sends.
  for (const b of bufs) tx.send(b, port, '127.0.0.1');
}

test('coalesced receive: runs sent with UDP_SEGMENT arrive as the same datagrams, in order, from the same source', { skip }, async (t) => {
  const { receiver, rx, tx, got } = await pair(t);
  assert.equal(rx.coalesce?.(), true);
  const sent = datagrams(100, 200, 50);
  sendAll(tx, rx.local.port, sent);
  await waitFor(() => got.length === sent.length, 'every datagram');
  assert.deepEqual(
    got.map((g) => g.buf),
    sent,
  );
  assert.ok(got.every((g) => g.port === tx.local.port));
  assert.ok(receiver.coalesceStats.coalesced > 0, 'the kernel queued at least one run as one buffer');
});

test('coalesced receive: runs holding more datagrams than the free slots wait and come next, in order, none lost or doubled', { skip }, async (t) => {
  const { receiver, rx, tx, got } = await pair(t);
  assert.equal(rx.coalesce?.(), true);
  // Four runs of 64 land before the receiver's loop runs again: 256 datagrams in one harvest's
  // reach, 128 slots.
  const sent = datagrams(256, 96, 64);
  sendAll(tx, rx.local.port, sent);
  await waitFor(() => got.length >= sent.length, 'every datagram');
  await new Promise((r) => setImmediate(r));
  assert.equal(got.length, sent.length);
  assert.deepEqual(
    got.map((g) => g.buf.readUInt32BE(0)),
    sent.map((_, i) => i),
  );
  assert.deepEqual(
    got.map((g) => g.buf),
    sent,
  );
  assert.ok(receiver.coalesceStats.carried > 0, `some datagrams waited for a slot (${JSON.stringify(receiver.coalesceStats)})`);
});

test('coalesced receive: gro off (NativeDatapathOptions.gro false) leaves the socket as it was, with the same datagrams', { skip }, async (t) => {
  const { receiver, rx, tx, got } = await pair(t, { gro: false });
  assert.equal(rx.coalesce?.(), false);
  const sent = datagrams(100, 200, 50);
  sendAll(tx, rx.local.port, sent);
  await waitFor(() => got.length === sent.length, 'every datagram');
  assert.deepEqual(
    got.map((g) => g.buf),
    sent,
  );
  assert.deepEqual(receiver.coalesceStats, { coalesced: 0, carried: 0 });
});

test('coalesced receive: a socket closed while its datagrams wait for a slot gets none of them; the engine keeps working', { skip }, async (t) => {
  const { sender, receiver } = engines(t);
  let closedAt = -1;
  let afterClose = 0;
  const got: number[] = [];
  const rx: UdpListener = await receiver.listen('127.0.0.1', 0, {
    onDatagram: (buf) => {
      if (closedAt >= 0) afterClose++;
      got.push(buf.readUInt32BE(0));
      // Closed inside the first batch, while the rest of the runs wait in the carry.
      if (got.length === 10) {
        closedAt = got.length;
        void rx.close();
      }
    },
    onSendError: () => {},
  });
  const tx = await sender.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
  assert.equal(rx.coalesce?.(), true);
  sendAll(tx, rx.local.port, datagrams(256, 96, 64));
  await waitFor(() => closedAt >= 0, 'the first batch');
  const late: Buffer[] = [];
  const again = await receiver.listen('127.0.0.1', 0, { onDatagram: (buf) => void late.push(Buffer.from(buf)), onSendError: () => {} });
  const probe = Buffer.from('probe');
  tx.send(probe, again.local.port, '127.0.0.1');
  await waitFor(() => late.length > 0, 'the probe');
  assert.deepEqual(late, [probe]);
  assert.equal(afterClose, 0);
  assert.deepEqual(got, [...Array(10).keys()]);
  assert.ok(receiver.coalesceStats.carried > 0, 'datagrams were waiting when the socket closed');
});

test('coalesced receive: a tunnel socket flooded with runs takes no more than its share of a harvest; another socket ready after it is in the first batch', { skip }, async (t) => {
  const { sender, receiver } = engines(t);
  const order: string[] = [];
  const numbers: number[] = [];
  const a = await receiver.listen('127.0.0.1', 0, {
    onDatagram: (buf) => {
      order.push('a');
      numbers.push(buf.readUInt32BE(0));
    },
    onSendError: () => {},
  });
  const b = await receiver.listen('127.0.0.1', 0, { onDatagram: () => void order.push('b'), onSendError: () => {} });
  assert.equal(a.coalesce?.(), true);
  const tx = await sender.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
  // One flush: four runs of 64 to `a` first (ready first), then three datagrams to `b`; all queued
  // before the receiver's loop runs.
  sendAll(tx, a.local.port, datagrams(256, 96, 64));
  for (let i = 0; i < 3; i++) tx.send(Buffer.from(`b${i}`), b.local.port, '127.0.0.1');
  await waitFor(() => order.length === 259, 'every datagram');
  const first = order.indexOf('b');
  assert.ok(first >= 0 && first < 128, `b's first datagram came at ${first} (a batch is 128)`);
  assert.deepEqual(numbers, [...Array(256).keys()], "a's datagrams in order, none lost or doubled");
  assert.ok(receiver.coalesceStats.carried > 0);
});
