// Interop with the real udpexposer 0.3.0 binary in both roles, with and without -P, on both
// datapaths (and native with a receive delay): Sluice's server with the real client, and the real server with Sluice's client,
// carrying echoes for two connectees (two tags) byte for byte. Under CI=true nothing skips.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { UdpexposerKey } from '../../src/protocol/udpexposer/key.js';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import { UdpexposerServer } from '../../src/udpexposer/server.js';
import { systemClock } from '../../src/core/clock.js';
import { freePort } from '../helpers/net.js';
import { perDatapathAndDelay } from './delayed-datapath.js';
import { echoServer, udpPeer, waitFor } from './net.js';
import { runRealUdpexposer, udpexposerBinary } from './real-peer.js';

const { test, datapathOf } = perDatapathAndDelay();
const PASSWORD = 'interop-password';

/** Two connectees, each sending distinct payloads (one of 1 byte, one of 2044: the largest the real server relays back, measured: 2046 comes back as 2044; an empty one is a keepalive on this wire) and expecting them back in order. */
async function echoesThrough(t: TestContext, port: number): Promise<void> {
  const a = await udpPeer(t);
  const b = await udpPeer(t);
  const payloads = (who: string) => [Buffer.from(`${who} first`), Buffer.from(who), Buffer.alloc(2044, who), Buffer.from(`${who} last`)];
  for (const [peer, who] of [[a, 'a'], [b, 'b']] as const) {
    for (const p of payloads(who)) {
      peer.send(p, port);
      assert.deepEqual((await peer.next(5000)).msg, p, `${who}: ${p.length} bytes come back unchanged`);
    }
  }
}

for (const password of [undefined, PASSWORD]) {
  const mode = password === undefined ? 'no password' : '-P';

  test(`Sluice server + real udpexposer client (${mode})`, async (t) => {
    const bin = udpexposerBinary(t);
    if (!bin) return;
    const echo = await echoServer(t);
    const ac = new AbortController();
    const key = password === undefined ? undefined : await UdpexposerKey.fromPassword(password);
    const server = await UdpexposerServer.listen(
      { listen: { host: '127.0.0.1', port: 0 }, maxClients: 8, key, peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }) },
      { clock: systemClock, datapath: datapathOf(t) },
      ac.signal,
    );
    t.after(async () => {
      ac.abort();
      await server.closed;
    });
    const real = runRealUdpexposer(t, bin, [
      '127.0.0.1:0', '-a', `127.0.0.1:${server.local.port}`, '-c', `127.0.0.1:${echo.port}`, '-i', '200', ...(password ? ['-P', password] : []),
    ]);
    await waitFor(() => server.client !== undefined && (password === undefined || server.client.authenticated), 10_000);
    await echoesThrough(t, server.local.port);
    assert.equal(server.connectees, 2);
    assert.equal(server.counters.toConnectees.datagrams, 8);
    assert.equal(server.counters.fromConnectees.datagrams, 8);
    assert.equal(server.counters.invalidTokens, 0);
    assert.equal(server.datapath, datapathOf(t)!.kind);
    // Native: past each connectee's first round trip, the real client's frames went through the batch.
    if (server.datapath === 'native') assert.ok(server.counters.forwardedInBatch >= 8, `in the batch: ${server.counters.forwardedInBatch}`);
    else assert.equal(server.counters.forwardedInBatch, 0);
    assert.match(real.out(), /New incoming channel/);
  });

  test(`real udpexposer server + Sluice client (${mode})`, async (t) => {
    const bin = udpexposerBinary(t);
    if (!bin) return;
    const echo = await echoServer(t);
    const port = await freePort('udp');
    const real = runRealUdpexposer(t, bin, [`127.0.0.1:${port}`, '-s', ...(password ? ['-P', password] : [])]);
    const ac = new AbortController();
    const key = password === undefined ? undefined : await UdpexposerKey.fromPassword(password);
    // The real server may not be bound yet: keepalives every 100 ms register the client once it is.
    const client = await UdpexposerClient.start(
      {
        listen: { host: '127.0.0.1', port: 0 },
        server: { host: '127.0.0.1', port },
        target: { host: '127.0.0.1', port: echo.port },
        maxClients: 8,
        pingIntervalMs: 100,
        key,
      },
      { clock: systemClock, datapath: datapathOf(t) },
      ac.signal,
    );
    t.after(async () => {
      ac.abort();
      await client.closed;
    });
    await waitFor(() => real.out().includes(`New client address: 127.0.0.1:${client.local.port}`) && (key === undefined || client.authenticated), 10_000);
    await echoesThrough(t, port);
    assert.equal(client.workers, 2);
    assert.equal(client.counters.toTarget.datagrams, 8);
    assert.equal(client.counters.toServer.datagrams, 8);
    assert.equal(client.counters.dropped['bad-signature'] + client.counters.invalidTokens, 0);
    assert.equal(new Set(echo.inbox.map((m) => m.from.port)).size, 2, 'one worker socket per connectee');
    assert.equal(client.datapath, datapathOf(t)!.kind);
    // Native: once each worker's socket was open, the real server's frames went through the batch.
    if (client.datapath === 'native') assert.ok(client.counters.forwardedInBatch >= 8, `in the batch: ${client.counters.forwardedInBatch}`);
    else assert.equal(client.counters.forwardedInBatch, 0);
  });
}
