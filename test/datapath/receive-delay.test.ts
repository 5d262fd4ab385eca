// The native engine's bounded receive delay (native/src/hold.cc, docs/datapath.md "A bounded
// receive delay"): a paced sender's datagrams are received in fewer batches, none is lost or held
// past the delay, sparse traffic is never delayed, and a burst larger than the slots arrives whole.
// The sender is another process: while the engine sleeps, this process's event loop is blocked.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import dgram from 'node:dgram';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath, type NativeDatapathOptions } from '../../src/datapath/native/native-datapath.js';
import { waitFor } from '../helpers/net.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

function datapath(t: TestContext, opts: NativeDatapathOptions): NativeDatapath {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout, opts);
  t.after(() => dp.destroy());
  return dp;
}

/** A listener that records each datagram with the time it was handled, and counts batches. */
async function counting(t: TestContext, dp: NativeDatapath) {
  const got: { index: number; sentNs: bigint; receivedNs: bigint }[] = [];
  let batches = 0;
  dp.afterBatch = () => void batches++;
  const listener = await dp.listen('127.0.0.1', 0, {
    onDatagram: (buf) => void got.push({ index: buf.readUInt32BE(8), sentNs: buf.readBigUInt64BE(0), receivedNs: process.hrtime.bigint() }),
    onSendError: () => {},
  });
  t.after(() => listener.close());
  return { port: listener.local.port, got, batches: () => batches };
}

/**
 * Another process sends `count` datagrams to `port`, `gapMs` apart; each carries its send time
 * (CLOCK_MONOTONIC, the clock of process.hrtime in both processes) and its index.
 */
async function paced(t: TestContext, port: number, count: number, gapMs: number): Promise<void> {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    let i = 0;
    const tick = () => {
      const b = Buffer.alloc(64);
      b.writeBigUInt64BE(process.hrtime.bigint(), 0);
      b.writeUInt32BE(i, 8);
      s.send(b, ${port}, '127.0.0.1', () => { if (++i === ${count}) s.close(); else setTimeout(tick, ${gapMs}); });
    };
    tick();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  t.after(() => child.kill());
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, 'the sender ran to the end');
}

test('receive delay: a paced sender is received in fewer batches, every datagram within the delay', { skip }, async (t) => {
  const delayUs = 5000;
  const dp = datapath(t, { receiveDelayUs: delayUs });
  const l = await counting(t, dp);
  await paced(t, l.port, 60, 1);
  // The last datagram arrives with no traffic after it: nothing is held until the next wake-up.
  await waitFor(() => l.got.length === 60, `60 datagrams (got ${l.got.length})`);
  assert.deepEqual(l.got.map((g) => g.index), [...Array(60).keys()], 'all of them, in order');
  assert.ok(dp.receiveDelays > 0, 'the engine slept to let batches fill');
  // ~60 wake-ups without the delay; with 5 ms of delay and 1 ms between datagrams, about 12.
  assert.ok(l.batches() <= 40, `60 datagrams 1 ms apart in ${l.batches()} batches`);
  // Bounded: a datagram waits at most the delay plus scheduling (a generous allowance on a shared machine).
  const worstMs = Number(l.got.reduce((m, g) => (g.receivedNs - g.sentNs > m ? g.receivedNs - g.sentNs : m), 0n)) / 1e6;
  assert.ok(worstMs < delayUs / 1000 + 500, `worst wait ${worstMs.toFixed(1)} ms`);
});

test('receive delay: sparse traffic is never delayed (the first datagram after a quiet spell is handled at once)', { skip }, async (t) => {
  const dp = datapath(t, { receiveDelayUs: 2000 });
  const l = await counting(t, dp);
  await paced(t, l.port, 5, 100);
  await waitFor(() => l.got.length === 5, `5 datagrams (got ${l.got.length})`);
  assert.equal(dp.receiveDelays, 0, 'no sleep: each datagram came 100 ms after the last');
});

test('receive delay: traffic that would not fill a batch is not delayed (a datagram every 4 ms, a delay of 5 ms)', { skip }, async (t) => {
  const dp = datapath(t, { receiveDelayUs: 5000 });
  const l = await counting(t, dp);
  await paced(t, l.port, 30, 4);
  await waitFor(() => l.got.length === 30, `30 datagrams (got ${l.got.length})`);
  // Each callback starts within the delay of the last, but at 250 datagrams/s a sleep of 5 ms
  // would catch about one datagram: it would only delay it.
  const slept = dp.receiveDelays;
  assert.ok(slept <= 5, `slept ${slept} times`);
});

test('receive delay: a burst larger than the receive slots arrives whole', { skip }, async (t) => {
  const dp = datapath(t, { receiveDelayUs: 10_000, rxSlots: 8 });
  const l = await counting(t, dp);
  const s = dgram.createSocket('udp4');
  t.after(() => s.close());
  for (let i = 0; i < 400; i++) {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(i, 8);
    s.send(b, l.port, '127.0.0.1');
  }
  await waitFor(() => l.got.length === 400, `400 datagrams (got ${l.got.length})`);
  assert.deepEqual(l.got.map((g) => g.index), [...Array(400).keys()]);
});

test('receive delay: no sleep while more sockets are ready than one harvest takes (a datagram on each of 256 sockets)', { skip }, async (t) => {
  const dp = datapath(t, { receiveDelayUs: 10_000 });
  let got = 0;
  const ports: number[] = [];
  for (let i = 0; i < 256; i++) {
    const l = await dp.listen('127.0.0.1', 0, { onDatagram: () => void got++, onSendError: () => {} });
    t.after(() => l.close());
    ports.push(l.local.port);
  }
  // One datagram first, and a pause: the engine's rate window (10 ms) then closes on the burst's
  // first harvest and finds it dense.
  const one = dgram.createSocket('udp4');
  t.after(() => one.close());
  one.send(Buffer.alloc(64), ports[0]!, '127.0.0.1');
  await waitFor(() => got === 1, 'the first datagram');
  await new Promise((r) => setTimeout(r, 30));
  // Sent by a child while this process's loop is blocked: all 256 sockets are ready at once, and
  // each harvest's epoll_wait reports 64 of them.
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    let left = ${ports.length};
    for (const port of ${JSON.stringify(ports)}) s.send(Buffer.alloc(64), port, '127.0.0.1', () => { if (--left === 0) s.close(); });`;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  assert.equal(r.status, 0, String(r.stderr));
  await waitFor(() => got === 257, `257 datagrams (got ${got})`);
  // Four harvests of 64; without the check the three after the first would each sleep 10 ms.
  const slept = dp.receiveDelays;
  assert.ok(slept <= 1, `slept ${slept} times`);
});

test('receive delay: the addon clamps it to 0..10000 µs and off is 0', { skip }, (t) => {
  if (!loaded.ok) return;
  const dp = datapath(t, {});
  assert.equal(loaded.binding.receiveDelay!(dp.engine!.handle, 20_000), 10_000);
  assert.equal(loaded.binding.receiveDelay!(dp.engine!.handle, -5), 0);
  assert.equal(loaded.binding.receiveDelay!(dp.engine!.handle, 250), 250);
});
