// A Sluice server and client on the native datapath, each on its own engine: a run of frames one
// role sends the other with UDP_SEGMENT arrives at the other's main socket as one buffer
// (UDP_GRO, native/src/gro.cc) and is cut back into the same datagrams, in order; read from the
// engines' counters.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { UdpexposerServer } from '../../src/udpexposer/server.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { echoServer, udpPeer, waitFor } from './net.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

function engine(t: TestContext): NativeDatapath {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout, {});
  t.after(() => dp.destroy());
  return dp;
}

test('udpexposer pair, native: runs between server and client arrive coalesced and come out as the same datagrams, in order', { skip }, async (t) => {
  if (loaded.ok && !loaded.layout.gso) return t.skip('no UDP_SEGMENT on this kernel');
  const serverDp = engine(t);
  const clientDp = engine(t);
  const echo = await echoServer(t);
  const ac = new AbortController();
  const clock = new ManualClock();
  const server = await UdpexposerServer.listen(
    { listen: { host: '127.0.0.1', port: 0 }, maxClients: 4, peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }) },
    { clock, datapath: serverDp, onEvent: () => {} },
    ac.signal,
  );
  const client = await UdpexposerClient.start(
    { listen: { host: '127.0.0.1', port: 0 }, server: { host: '127.0.0.1', port: server.local.port }, target: { host: '127.0.0.1', port: echo.port }, maxClients: 4, pingIntervalMs: 25_000 },
    { clock, datapath: clientDp, onEvent: () => {} },
    ac.signal,
  );
  t.after(async () => {
    ac.abort();
    await Promise.all([server.closed, client.closed]);
  });
  await waitFor(() => server.client !== undefined);
  const pub = await udpPeer(t);
  pub.send('first', server.local.port);
  assert.equal((await pub.next()).msg.toString(), 'first', 'the session is up');
  // A burst of equal-sized datagrams: sent while this loop runs, received by the server as one
  // batch, framed and sent to the client as a UDP_SEGMENT run; the echoes come back the same way.
  const sent = Array.from({ length: 100 }, (_, i) => Buffer.from(`datagram ${i} `.padEnd(64, '.')));
  for (const b of sent) pub.send(b, server.local.port);
  const back: Buffer[] = [];
  for (let i = 0; i < sent.length; i++) back.push((await pub.next(5000)).msg);
  assert.deepEqual(back, sent, 'every datagram, same bytes, same order');
  assert.ok(clientDp.coalesceStats.coalesced >= 1, `the client's main socket took the server's run as one buffer (${clientDp.coalesceStats.coalesced})`);
  assert.ok(serverDp.coalesceStats.coalesced >= 1, `the server's socket took the client's run as one buffer (${serverDp.coalesceStats.coalesced})`);
});
