import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { RefusalHold } from '../../src/admission/refusal-hold.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** `n` accepted server-side sockets on 127.0.0.1 (their clients are kept to see them close). */
async function accepted(t: import('node:test').TestContext, n: number) {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const sockets: net.Socket[] = [];
  const clients: net.Socket[] = [];
  server.on('connection', (s) => sockets.push(s));
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    clients.push(c);
  }
  while (sockets.length < n) await once(server, 'connection');
  t.after(() => {
    for (const s of [...sockets, ...clients]) s.destroy();
    server.close();
  });
  return { sockets, clients };
}

test('refused connections are held unread for 1-2x holdMs, bounded in total and per source, and closed by close()', async (t) => {
  const clock = new ManualClock();
  const hold = new RefusalHold({ holdMs: 1000, max: 3, maxPerSource: 2 }, clock);
  const { sockets, clients } = await accepted(t, 5);
  assert.equal(hold.refuse(sockets[0]!, 'a'), true);
  assert.equal(hold.refuse(sockets[1]!, 'a'), true);
  assert.equal(hold.refuse(sockets[2]!, 'a'), false, 'per source');
  assert.equal(sockets[2]!.destroyed, true);
  assert.equal(hold.refuse(sockets[3]!, 'b'), true);
  assert.equal(hold.refuse(sockets[4]!, 'c'), false, 'in total');
  assert.equal(hold.size, 3);
  // Nothing is read while held: what the client sends stays in the kernel.
  clients[0]!.write('hello');
  clock.advance(999);
  assert.equal(hold.size, 3);
  assert.equal(sockets[0]!.bytesRead, 0);
  clock.advance(1001);
  assert.equal(hold.size, 0, 'all closed by 2x holdMs');
  assert.ok(sockets.slice(0, 4).every((s) => s.destroyed));
  await new Promise((r) => clients[0]!.once('close', r)); // the client sees its connection end

  const more = await accepted(t, 2);
  hold.refuse(more.sockets[0]!, 'a');
  hold.close();
  assert.equal(more.sockets[0]!.destroyed, true);
  assert.equal(hold.refuse(more.sockets[1]!, 'a'), false, 'closed: refused ones close at once');
});
