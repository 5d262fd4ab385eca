import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { nativeStreamCase } from './stream-datapaths.js';
import type { PairEnd, StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { tcpServer } from '../helpers/net.js';

// The native stream engine closes the sockets of the pairs a look at its set ended after that
// look's delivery (docs/datapath.md, "What a connection waits for at the bench's load"), so the
// bytes and dials of the connections still in flight go first. A close held back must still
// happen before the next look: every client gets its FIN and no descriptor is left open.
const nativeCase = nativeStreamCase();
const skip = nativeCase.skip ?? false;
const nativeDp = (): StreamDatapath => {
  if (!nativeCase.datapath) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs)');
  return nativeCase.datapath;
};

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('native stream engine: pairs ending beside new connections are closed: every client gets its bytes and FIN, no descriptor stays open', { skip, timeout: 20_000 }, async (t) => {
  const dp = nativeDp();
  const up = await tcpServer(t, (s) => s.pipe(s).on('error', () => {}));
  const ends: PairEnd[] = [];
  const listener = await dp.listen('127.0.0.1', 0, (down) => {
    // As a route does: dialed from the batch that accepted the client, joined at connect.
    dp.dial(
      { address: '127.0.0.1', port: up.port, family: 4 },
      2000,
      (err, upConn) => {
        if (err) return down.destroy();
        if (!dp.pipe(down, upConn!, 0, (end) => ends.push(end))) throw new Error('not joined in the datapath');
      },
      { down, idleTimeoutMs: 0 },
    );
  });
  t.after(() => listener.close());

  // One client alone first, so the pipe pool and the listener's state are in the baseline.
  const warm = net.connect(listener.local.port, '127.0.0.1');
  warm.resume();
  warm.end('w');
  await once(warm, 'close');
  while (ends.length < 1 || up.sockets.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const before = openFds();

  // Waves of clients that connect, echo and close at once: their pairs end in the same looks
  // that accept and dial the next ones.
  const waves = 4;
  const perWave = 48;
  for (let w = 0; w < waves; w++) {
    const clients = Array.from({ length: perWave }, (_, i) => {
      const c = net.connect(listener.local.port, '127.0.0.1');
      const msg = `wave ${w} client ${i}`.padEnd(32, '.');
      c.end(msg);
      const chunks: Buffer[] = [];
      c.on('data', (b: Buffer) => chunks.push(b));
      return once(c, 'close').then(() => assert.equal(Buffer.concat(chunks).toString(), msg));
    });
    await Promise.all(clients);
  }
  const total = 1 + waves * perWave;
  while (ends.length < total || up.sockets.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(ends.length, total, 'one end per pair');
  for (const e of ends.slice(1)) {
    assert.equal(e.bytesFromClient, 32);
    assert.equal(e.bytesToClient, 32);
    assert.equal(e.reason, 'client-closed');
  }
  // Both sockets of every pair are closed: the process holds what it held after the first one.
  assert.equal(openFds(), before, 'descriptors left open after the pairs ended');
});
