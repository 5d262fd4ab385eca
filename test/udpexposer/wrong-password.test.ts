// A client started with the wrong -P: udpexposer's server forwards its signed keepalives as
// connectee data, so two clients' services echo each other's frames in a loop. Sluice's server
// drops them, Sluice's client relays nothing until the server has answered with a token that
// verifies, and says after a few unanswered registrations that the password is probably wrong.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { UdpexposerKey } from '../../src/protocol/udpexposer/key.js';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { UdpexposerServer } from '../../src/udpexposer/server.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import type { UdpexposerEvent } from '../../src/udpexposer/types.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { freePort } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { vectorKey } from '../protocol/udpexposer/helpers.js';
import { echoServer, sleep, waitFor } from './net.js';
import { udpexposerBinary } from './real-peer.js';

async function client(t: TestContext, serverPort: number, target: number, key: UdpexposerKey, clock = new ManualClock()) {
  const ac = new AbortController();
  const events: UdpexposerEvent[] = [];
  const c = await UdpexposerClient.start(
    {
      listen: { host: '127.0.0.1', port: 0 },
      server: { host: '127.0.0.1', port: serverPort },
      target: { host: '127.0.0.1', port: target },
      maxClients: 4,
      pingIntervalMs: 1000,
      key,
    },
    { clock, onEvent: (e) => void events.push(e) },
    ac.signal,
  );
  t.after(async () => {
    ac.abort();
    await c.closed;
  });
  return { c, events, clock };
}

test('Sluice server: keepalives signed with another password are dropped, so nothing loops between two clients', async (t) => {
  const ac = new AbortController();
  const serverEvents: UdpexposerEvent[] = [];
  const server = await UdpexposerServer.listen(
    { listen: { host: '127.0.0.1', port: 0 }, maxClients: 4, key: vectorKey, peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }) },
    { clock: new ManualClock(), onEvent: (e) => void serverEvents.push(e) },
    ac.signal,
  );
  t.after(async () => {
    ac.abort();
    await server.closed;
  });
  const [goodEcho, badEcho] = [await echoServer(t), await echoServer(t)];
  const good = await client(t, server.local.port, goodEcho.port, vectorKey);
  await waitFor(() => good.c.authenticated);

  const bad = await client(t, server.local.port, badEcho.port, await UdpexposerKey.fromPassword('not-the-password'));
  for (let i = 1; i < 6; i++) {
    bad.clock.advance(1000);
    await waitFor(() => server.counters.invalidTokens >= i + 1);
  }
  await sleep(100); // a loop, if any, would be thousands of datagrams by now
  assert.equal(server.counters.toClient.datagrams, 0, 'nothing forwarded to the registered client');
  assert.equal(goodEcho.inbox.length, 0);
  assert.equal(badEcho.inbox.length, 0);
  assert.equal(server.client?.port, good.c.local.port, 'the registered client stays');
  assert.deepEqual(serverEvents.filter((e) => e.type === 'bad-signature').map((e) => e.type === 'bad-signature' && e.peer.port), [bad.c.local.port]);
  const warned = bad.events.filter((e) => e.type === 'registration-unanswered');
  assert.equal(warned.length, 1, 'the wrong client warns once');
  assert.equal(warned[0]!.type === 'registration-unanswered' && warned[0]!.unanswered, 3);
  assert.equal(bad.c.authenticated, false);
  assert.ok(!good.events.some((e) => e.type === 'registration-unanswered'), 'the right client does not warn');
});

test('sluice udpexposer client with a wrong -P against the real udpexposer server: warns, and relays nothing back', async (t) => {
  const bin = udpexposerBinary(t);
  if (!bin) return;
  const port = await freePort('udp');
  const real = spawn(bin, [`127.0.0.1:${port}`, '-s', '-P', 'right-password'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (real.exitCode === null) real.kill('SIGKILL');
  });
  const [goodEcho, badEcho] = [await echoServer(t), await echoServer(t)];
  const good = runSluice(t, ['udpexposer', '127.0.0.1:0', '-c', `127.0.0.1:${goodEcho.port}`, '-a', `127.0.0.1:${port}`, '-P', 'right-password', '-i', '100']);
  await waitFor(() => good.out().includes('Authenticated'), 10_000);
  const bad = runSluice(t, ['udpexposer', '127.0.0.1:0', '-c', `127.0.0.1:${badEcho.port}`, '-a', `127.0.0.1:${port}`, '-P', 'wrong-password', '-i', '100']);
  await waitFor(() => bad.err().includes('registrations sent to'), 10_000);
  assert.match(bad.err(), /warning: 3 registrations sent to 127\.0\.0\.1:\d+ got no signed answer: check that -P matches the server's password/);
  await sleep(500);
  // udpexposer forwards each bad keepalive to the registered client (one datagram per keepalive);
  // the wrong client drops what comes back, so the loop never closes.
  assert.equal(badEcho.inbox.length, 0, 'the wrong client relays nothing');
  assert.ok(goodEcho.inbox.length < 40, `the good service saw only the forwarded keepalives (${goodEcho.inbox.length}), not a loop`);
  bad.child.kill('SIGTERM');
  assert.equal(await bad.exited, 0);
  const stats = JSON.parse(/stopped (\{.*\})/.exec(bad.err())![1]!) as { dropped: { unregistered: number }; toTarget: { datagrams: number } };
  assert.equal(stats.toTarget.datagrams, 0);
  good.child.kill('SIGTERM');
  await good.exited;
});
