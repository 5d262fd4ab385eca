// Datagrams a udpexposer channel in the native batch fails to send are counted in the role's
// `sendErrors`, as those JavaScript fails to send are. The failure is the kernel's own: a connectee
// whose source is the loopback broadcast address (forged on a raw socket) is answered through the
// server's socket, which has no SO_BROADCAST: every reply fails with EACCES, in either path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { freePort } from '../helpers/net.js';
import { forgeBroadcastSource, haveRawSockets } from '../helpers/forged-source.js';
import { waitFor } from './net.js';
import { nativePair } from './native-pair.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

test('native udpexposer server: replies the batch cannot send to a connectee count in sendErrors, as those JavaScript cannot send do', { skip, timeout: 30_000 }, async (t) => {
  if (!haveRawSockets(t)) return;
  const { server, client, echo } = await nativePair(t);
  const sport = await freePort('udp');

  // One at a time until the channel is handed over at both roles; each answer fails at the server.
  let i = 0;
  while (server.offloaded === 0 || client.offloaded === 0) {
    assert.ok(i < 10, 'the channel is handed over within 10 round trips');
    forgeBroadcastSource(server.local.port, sport, 1, i++);
    await waitFor(() => echo.inbox.length === i, 5000);
  }
  const inBatch = server.counters.forwardedInBatch;
  const burst = 50;
  forgeBroadcastSource(server.local.port, sport, burst, i);
  const all = i + burst;
  await waitFor(() => echo.inbox.length === all, 10_000);
  await waitFor(() => server.sendErrors >= all, 10_000).catch(() => undefined);
  assert.equal(server.sendErrors, all, 'every answer to the connectee failed and is counted once');
  assert.ok(server.counters.forwardedInBatch - inBatch >= burst, `the burst went through the batch (${server.counters.forwardedInBatch - inBatch})`);
});
