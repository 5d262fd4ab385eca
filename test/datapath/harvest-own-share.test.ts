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

test('native harvest: the shared listener\'s datagrams are taken before a client\'s own socket\'s beyond its slots (an eighth of a batch), and the own socket\'s still all arrive', { skip }, async (t) => {
  if (!loaded.ok) return;
  const dp = new NativeDatapath(loaded.binding, loaded.layout); // 128 slots a batch
  t.after(() => dp.destroy());
  const order: string[] = [];
  let flooderPort = 0;
  const l = await dp.listen('127.0.0.1', 0, {
    onDatagram: (_buf, _address, port) => void order.push(port === flooderPort ? 'own' : 'shared'),
    onSendError: () => {},
  });
  const probe = dgram.createSocket('udp4');
  probe.bind(0, '127.0.0.1');
  await once(probe, 'listening');
  flooderPort = probe.address().port;
  probe.close();
  const own = dp.isolate(l, '127.0.0.1', flooderPort, 1 << 20);
  t.after(() => own.close());
  // Queued while this process's loop is blocked: 300 at the flooder's own socket first, then 100
  // from a second client at the listener. Both fill their share of the first batch (64 each);
  // the listener's rest goes before any more of the flooder's.
  const script = `
    const dgram = require('node:dgram');
    const x = dgram.createSocket('udp4'), s = dgram.createSocket('udp4');
    const buf = Buffer.alloc(64);
    let left = 400;
    const done = () => { if (--left === 0) { x.close(); s.close(); } };
    x.bind(${flooderPort}, '127.0.0.1', () => {
      for (let i = 0; i < 300; i++) x.send(buf, ${l.local.port}, '127.0.0.1', done);
      setTimeout(() => { for (let i = 0; i < 100; i++) s.send(buf, ${l.local.port}, '127.0.0.1', done); }, 20);
    });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  assert.equal(r.status, 0, String(r.stderr));
  await waitFor(() => order.filter((x) => x === 'shared').length === 100, 'the second client\'s datagrams');
  const lastShared = order.lastIndexOf('shared');
  const ownBefore = order.slice(0, lastShared).filter((x) => x === 'own').length;
  assert.ok(ownBefore >= 8, `the own socket is still served in the same batch (${ownBefore})`);
  assert.ok(ownBefore <= 32, `the own socket's datagrams before the second client's last: ${ownBefore} (its slots are 16 a batch; all 100 fit in the first)`);
  await waitFor(() => order.length === 400, 'every datagram, the own socket\'s too');
});
