// 2,000 channels at once on a Sluice client: no MaxListenersExceededWarning, and the client adds
// one abort listener to its signal however many workers it opens (each worker's socket used to
// take the client's signal, one listener per worker). On both datapaths.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { perDatapath } from '../datapath/datapaths.js';
import { echoServer, sleep, udpPeer, waitFor } from './net.js';

const { test, datapathOf } = perDatapath();
const CHANNELS = 2000;

test(`a client with ${CHANNELS} channels: no listener warning, one abort listener`, async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => void warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => void process.off('warning', onWarning));
  const echo = await echoServer(t);
  const server = await udpPeer(t); // stands for the udpexposer server: sends one frame per tag
  const ac = new AbortController();
  const client = await UdpexposerClient.start(
    {
      listen: { host: '127.0.0.1', port: 0 },
      server: { host: '127.0.0.1', port: server.port },
      target: { host: '127.0.0.1', port: echo.port },
      maxClients: CHANNELS,
      pingIntervalMs: 60_000,
    },
    { clock: new ManualClock(), datapath: datapathOf(t) },
    ac.signal,
  );
  await server.next(); // the first keepalive
  // In rounds of 100, so no socket buffer on the way overflows.
  for (let from = 1; from <= CHANNELS; from += 100) {
    for (let tag = from; tag < from + 100; tag++) {
      const frame = Buffer.alloc(6);
      frame.writeUInt16BE(tag, 0);
      frame.writeUInt32BE(tag, 2);
      server.send(frame, client.local.port);
    }
    await waitFor(() => server.inbox.length === from + 99, 10_000);
  }
  const tags = new Set(server.inbox.map((m) => m.msg.readUInt16BE(0)));
  assert.equal(tags.size, CHANNELS, 'every channel echoed under its own tag');
  assert.ok(server.inbox.every((m) => m.msg.readUInt16BE(0) === m.msg.readUInt32BE(2)), 'each echo under the tag it came in with');
  assert.equal(client.workers, CHANNELS);
  assert.equal(new Set(echo.inbox.map((m) => m.from.port)).size, CHANNELS, 'one worker socket per channel');
  assert.equal(getEventListeners(ac.signal, 'abort').length, 1, 'one abort listener, not one per worker');
  await sleep(10); // process warnings are emitted on a later tick
  assert.deepEqual(warnings.map((w) => `${w.name}: ${w.message}`), []);
  ac.abort();
  await client.closed;
  assert.equal(client.workers, 0);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
});

test('a burst of 100 frames for a new tag all reach the target while its worker opens', async (t) => {
  const echo = await echoServer(t);
  const server = await udpPeer(t);
  const ac = new AbortController();
  const client = await UdpexposerClient.start(
    { listen: { host: '127.0.0.1', port: 0 }, server: { host: '127.0.0.1', port: server.port }, target: { host: '127.0.0.1', port: echo.port }, maxClients: 4, pingIntervalMs: 60_000 },
    { clock: new ManualClock(), datapath: datapathOf(t) },
    ac.signal,
  );
  t.after(async () => {
    ac.abort();
    await client.closed;
  });
  await server.next(); // the first keepalive
  for (let i = 0; i < 100; i++) server.send(Buffer.from([0, 7, i]), client.local.port);
  await waitFor(() => server.inbox.length === 100, 5000);
  assert.deepEqual(server.inbox.map((m) => m.msg[2]), [...Array(100).keys()], 'all of them, in order');
  assert.equal(client.counters.dropped['queue-full'], 0);
  assert.equal(client.counters.workersOpened, 1);
});
