import assert from 'node:assert/strict';
import type net from 'node:net';
import type { TestContext } from 'node:test';
import { guardPooledConn, POOLED_MAX_IDLE_MS } from '../../src/datapath/pooled-conn.js';
import type { StreamConn } from '../../src/datapath/stream-datapath.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from './stream-datapaths.js';

/** The guard of an idle pooled data connection (src/datapath/pooled-conn.ts), on real sockets, once per stream datapath. */

const { test, datapathOf } = perStreamDatapath();

async function dialed(t: TestContext): Promise<{ conn: StreamConn; far: () => net.Socket }> {
  let far: net.Socket | undefined;
  const server = await tcpServer(t, (s) => (far = s));
  const conn = await new Promise<StreamConn>((resolve, reject) =>
    datapathOf(t)!.dial({ address: '127.0.0.1', port: server.port, family: 4 }, 2000, (err, c) => (err ? reject(err) : resolve(c!))),
  );
  t.after(() => conn.destroy());
  await waitFor(() => far !== undefined, 'accepted');
  return { conn, far: () => far! };
}

test('pooled connection: gone when the far end closes or writes while idle, not after release', async (t) => {
  const clock = new ManualClock();
  const a = await dialed(t);
  let goneA = 0;
  guardPooledConn(a.conn, clock, () => goneA++);
  a.far().end();
  await waitFor(() => goneA === 1, 'a FIN while idle ends it');
  const b = await dialed(t);
  let goneB = 0;
  guardPooledConn(b.conn, clock, () => goneB++);
  b.far().write('x');
  await waitFor(() => goneB === 1, 'stray bytes while idle end it');
  const c = await dialed(t);
  let goneC = 0;
  const release = guardPooledConn(c.conn, clock, () => goneC++, POOLED_MAX_IDLE_MS);
  release();
  c.far().end();
  clock.advance(POOLED_MAX_IDLE_MS);
  await new Promise((r) => setTimeout(r, 100)); // a late 'gone' would have come by now: the FIN is on loopback
  assert.equal(goneC, 0, 'released: taken by a stream, nothing more from the guard');
  assert.equal(goneA + goneB, 2, 'each once');
});

test('pooled connection: the maximum idle age ends it between 0.75 and 1 times POOLED_MAX_IDLE_MS', async (t) => {
  const clock = new ManualClock();
  const { conn } = await dialed(t);
  let gone = 0;
  guardPooledConn(conn, clock, () => gone++, POOLED_MAX_IDLE_MS);
  clock.advance(POOLED_MAX_IDLE_MS * 0.75 - 1);
  assert.equal(gone, 0);
  clock.advance(POOLED_MAX_IDLE_MS * 0.25 + 1);
  assert.equal(gone, 1);
  clock.advance(POOLED_MAX_IDLE_MS);
  assert.equal(gone, 1);
});
