import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { waitFor } from '../helpers/net.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

test('native harvest: two flooded sockets do not starve a third one; its datagrams are in the first batch', { skip }, async (t) => {
  if (!loaded.ok) return;
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  const order: string[] = [];
  const listen = (name: string) => dp.listen('127.0.0.1', 0, { onDatagram: () => void order.push(name), onSendError: () => {} });
  const a = await listen('a');
  const b = await listen('b');
  const c = await listen('c');
  // Sent by a child while this process's loop is blocked: everything waits in the kernel, the
  // flooded sockets ready first, then the first harvest takes from all three at once.
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const buf = Buffer.alloc(64);
    let left = 603;
    const send = (port, n) => { for (let i = 0; i < n; i++) s.send(buf, port, '127.0.0.1', () => { if (--left === 0) s.close(); }); };
    send(${a.local.port}, 300);
    send(${b.local.port}, 300);
    setTimeout(() => send(${c.local.port}, 3), 50);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  assert.equal(r.status, 0, String(r.stderr));
  await waitFor(() => order.filter((x) => x === 'c').length === 3, 'the third socket\'s datagrams');
  const first = order.indexOf('c');
  assert.ok(first < 128, `the third socket's first datagram came at ${first}, after ${order.length} in all (a batch is 128)`);
  await waitFor(() => order.length === 603, 'every datagram');
});

test('native harvest: a client\'s own socket (isolate) comes last to the slots the other sockets leave', { skip }, async (t) => {
  if (!loaded.ok) return;
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  const order: string[] = [];
  const listen = (name: string) => dp.listen('127.0.0.1', 0, { onDatagram: () => void order.push(name), onSendError: () => {} });
  const l = await listen('own');
  const b = await listen('b');
  const c = await listen('c');
  // The flooding client's port, known before it sends, so its own socket exists first.
  const probe = dgram.createSocket('udp4');
  probe.bind(0, '127.0.0.1');
  await once(probe, 'listening');
  const clientPort = probe.address().port;
  probe.close();
  const own = dp.isolate(l, '127.0.0.1', clientPort, 1 << 20);
  t.after(() => own.close());
  // Ready in this order while the loop is blocked: the client's own socket, b (both flooded),
  // then c (3). The first harvest gives b and c their share (42 of 128 slots), the client's own
  // socket at most 16 after them, then what is left to b, none of it to the client's own socket,
  // though it was ready first.
  const script = `
    const dgram = require('node:dgram');
    const x = dgram.createSocket('udp4'), s = dgram.createSocket('udp4');
    const buf = Buffer.alloc(64);
    let left = 603;
    const done = () => { if (--left === 0) { x.close(); s.close(); } };
    x.bind(${clientPort}, '127.0.0.1', () => {
      for (let i = 0; i < 300; i++) x.send(buf, ${l.local.port}, '127.0.0.1', done);
      setTimeout(() => { for (let i = 0; i < 300; i++) s.send(buf, ${b.local.port}, '127.0.0.1', done); }, 20);
      setTimeout(() => { for (let i = 0; i < 3; i++) s.send(buf, ${c.local.port}, '127.0.0.1', done); }, 60);
    });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  assert.equal(r.status, 0, String(r.stderr));
  await waitFor(() => order.length >= 128, 'a first batch');
  const first = order.slice(0, 128);
  const count = (name: string) => first.filter((x) => x === name).length;
  assert.equal(count('c'), 3);
  assert.ok(count('b') > count('own'), `first batch: b ${count('b')}, the client's own socket ${count('own')}`);
  assert.ok(count('own') >= 8, 'the client\'s own socket still gets its share');
  await waitFor(() => order.length === 603, 'every datagram');
});
