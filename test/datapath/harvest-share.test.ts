import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
