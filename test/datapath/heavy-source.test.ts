import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { waitFor } from '../helpers/net.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

/**
 * Sends, from a child while this process's loop is blocked (everything waits in the kernel), `n`
 * datagrams of 64 B to `port` from each of `senders` sockets, interleaved one by one, then 3 from
 * one more socket: the whole queue is harvested after the block. Returns the senders' ports.
 */
function burst(port: number, senders: number, n: number): number[] {
  const script = `
    const dgram = require('node:dgram');
    const buf = Buffer.alloc(64);
    const socks = Array.from({ length: ${senders + 1} }, () => dgram.createSocket('udp4'));
    let bound = 0, left = ${senders * n + 3};
    const done = () => { if (--left === 0) { console.log(JSON.stringify(socks.map((s) => s.address().port))); socks.forEach((s) => s.close()); } };
    socks.forEach((s) => s.bind(0, '127.0.0.1', () => {
      if (++bound < socks.length) return;
      for (let i = 0; i < ${n}; i++) for (let k = 0; k < ${senders}; k++) socks[k].send(buf, ${port}, '127.0.0.1', done);
      for (let i = 0; i < 3; i++) socks[${senders}].send(buf, ${port}, '127.0.0.1', done);
    }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 30_000, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as number[];
}

async function watched(t: import('node:test').TestContext, datagrams: number | null) {
  if (!loaded.ok) throw new Error(loaded.reason);
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  const seen = { datagrams: 0, heavy: [] as string[] };
  const l = await dp.listen('127.0.0.1', 0, {
    onDatagram: () => void seen.datagrams++,
    onSendError: () => {},
    onHeavySource: (address: string, port: number) => void seen.heavy.push(`${address}:${port}`),
  });
  if (datagrams !== null) assert.equal(dp.watchSources(l, datagrams), 0, 'nothing named yet');
  return { dp, l, seen };
}

test('native harvest: a source that fills a watched listener\'s share read after read is named once per 256 of its datagrams; the light one is not', { skip }, async (t) => {
  if (!loaded.ok) return;
  const { dp, l, seen } = await watched(t, 256);
  const [flooder, light] = burst(l.local.port, 1, 600);
  await waitFor(() => seen.datagrams === 603, `every datagram (${seen.datagrams})`);
  // 600 read 64 a time (the share of the only ready socket): named after its 4th full read.
  assert.deepEqual(seen.heavy, [`127.0.0.1:${flooder}`], `named: ${seen.heavy.join(', ')}; the light client was ${light}`);
  assert.equal(dp.watchSources(l, -1), 1, 'the count of sources named');
});

test('native harvest: two sources sharing the listener evenly are not named; an unwatched listener names nobody', { skip }, async (t) => {
  if (!loaded.ok) return;
  const even = await watched(t, 256);
  burst(even.l.local.port, 2, 400);
  await waitFor(() => even.seen.datagrams === 803, `every datagram (${even.seen.datagrams})`);
  assert.deepEqual(even.seen.heavy, [], 'neither has 3/4 of a read');
  assert.equal(even.dp.watchSources(even.l, -1), 0);

  const off = await watched(t, null);
  burst(off.l.local.port, 1, 600);
  await waitFor(() => off.seen.datagrams === 603, `every datagram (${off.seen.datagrams})`);
  assert.deepEqual(off.seen.heavy, [], 'not watched');
  assert.equal(off.dp.watchSources(off.l, -1), 0);
});
