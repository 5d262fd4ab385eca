// Loopback end to end: a Sluice udpexposer server, a Sluice udpexposer client exposing a UDP echo
// service, and plain sockets as connectees (the public side); every test on both datapaths.
import type { TestContext } from 'node:test';
import dgram from 'node:dgram';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { UdpexposerKey } from '../../src/protocol/udpexposer/key.js';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { UdpexposerServer } from '../../src/udpexposer/server.js';
import type { UdpexposerServerOptions } from '../../src/udpexposer/server-core.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import type { UdpexposerEvent } from '../../src/udpexposer/types.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { echoServer, sleep, udpPeer, waitFor } from './net.js';
import { vectorKey, wire } from '../protocol/udpexposer/helpers.js';
import { wireguardLikeDownload, wireguardLikeUpstream } from '../helpers/udp-shapes.js';
import { perDatapath } from '../datapath/datapaths.js';

const { test, datapathOf } = perDatapath();

/** Everything here runs on loopback, which a server refuses unless told (peer-policy.ts). */
const loopbackPeers = peerPolicy({ allowPrivate: false, allowLoopback: true });

interface Setup {
  server: UdpexposerServer;
  client: UdpexposerClient;
  events: UdpexposerEvent[];
}

async function start(
  t: TestContext,
  target: number,
  keys: { server?: UdpexposerKey; client?: UdpexposerKey } = {},
  serverOpts: Partial<UdpexposerServerOptions> = {},
): Promise<Setup> {
  const ac = new AbortController();
  const clock = new ManualClock();
  const events: UdpexposerEvent[] = [];
  const deps = { clock, datapath: datapathOf(t), onEvent: (e: UdpexposerEvent) => void events.push(e) };
  const server = await UdpexposerServer.listen({ listen: { host: '127.0.0.1', port: 0 }, maxClients: 4, key: keys.server, peerPolicy: loopbackPeers, ...serverOpts }, deps, ac.signal);
  const client = await UdpexposerClient.start(
    {
      listen: { host: '127.0.0.1', port: 0 },
      server: { host: '127.0.0.1', port: server.local.port },
      target: { host: '127.0.0.1', port: target },
      maxClients: 4,
      pingIntervalMs: 25_000,
      key: keys.client,
    },
    deps,
    ac.signal,
  );
  t.after(async () => {
    ac.abort();
    await Promise.all([server.closed, client.closed]);
    assert.equal(client.workers, 0, 'leak check: no worker left');
  });
  return { server, client, events };
}

test('no password: a public client gets its echoes through server and client', async (t) => {
  const echo = await echoServer(t);
  const { server, client } = await start(t, echo.port);
  await waitFor(() => server.client !== undefined);
  assert.equal(server.client?.port, client.local.port);
  const a = await udpPeer(t);
  const b = await udpPeer(t);
  for (let i = 0; i < 5; i++) {
    a.send(`a${i}`, server.local.port);
    b.send(`b${i}`, server.local.port);
    assert.equal((await a.next()).msg.toString(), `a${i}`);
    assert.equal((await b.next()).msg.toString(), `b${i}`);
  }
  assert.equal(server.connectees, 2);
  assert.equal(client.workers, 2);
  // each connectee reaches the echo service from its own worker socket
  assert.equal(new Set(echo.inbox.map((m) => m.from.port)).size, 2);
  assert.equal(a.inbox.length + b.inbox.length, 0);
});

test('password mode: the client authenticates and echoes flow', async (t) => {
  const echo = await echoServer(t);
  const { server, client, events } = await start(t, echo.port, { server: vectorKey, client: vectorKey });
  await waitFor(() => client.authenticated);
  assert.deepEqual(server.client, { address: '127.0.0.1', port: client.local.port, authenticated: true });
  assert.equal(client.counters.retriesAnswered, 1);
  assert.ok(events.some((e) => e.type === 'authenticated'));
  const a = await udpPeer(t);
  for (let i = 0; i < 5; i++) {
    a.send(`ping ${i}`, server.local.port);
    assert.equal((await a.next()).msg.toString(), `ping ${i}`);
  }
});

test('password mode: a wrong password is refused', async (t) => {
  const echo = await echoServer(t);
  const wrong = await UdpexposerKey.fromPassword('wrong-password');
  const { server, client } = await start(t, echo.port, { server: vectorKey, client: wrong });
  await waitFor(() => server.counters.invalidTokens >= 1);
  const a = await udpPeer(t);
  a.send('hello?', server.local.port);
  await waitFor(() => server.counters.dropped['no-client'] >= 1);
  await sleep(50);
  assert.equal(server.client, undefined);
  assert.equal(client.authenticated, false);
  assert.equal(a.inbox.length, 0);
  assert.equal(echo.inbox.length, 0);
  assert.equal(server.counters.retriesSent, 0, 'a token that does not verify gets no answer');
});

test('SPF-2 on real sockets: forged empty datagrams and replayed tokens do not re-point the client', async (t) => {
  const echo = await echoServer(t);
  const { server, client } = await start(t, echo.port, { server: vectorKey, client: vectorKey });
  await waitFor(() => client.authenticated);
  const attacker = await udpPeer(t);
  attacker.send(Buffer.alloc(0), server.local.port);
  attacker.send(wire.password_mode.initial_request.token!, server.local.port);
  const retry = await attacker.next(); // the constant token gets a Retry (bounded), nothing more
  assert.ok(retry.msg.length <= 105);
  await sleep(50);
  assert.deepEqual(server.client, { address: '127.0.0.1', port: client.local.port, authenticated: true });
  const a = await udpPeer(t);
  a.send('still mine', server.local.port);
  assert.equal((await a.next()).msg.toString(), 'still mine');
});

test('AMP-2 on real sockets: an amplifying service reaches a connectee at most its reply budget, and sending again unlocks nothing', async (t) => {
  // The exposed service answers every datagram with forty 100-byte datagrams (100x a 40-byte request).
  const amp = await udpPeer(t, (msg, from, s) => {
    for (let i = 0; i < 40; i++) s.send(Buffer.alloc(100, i), from.port, from.address);
  });
  const { server } = await start(t, amp.port, {}, { replyBudget: { ratio: 64, windowMs: 10_000 } });
  await waitFor(() => server.client !== undefined);
  const victim = await udpPeer(t);
  for (let round = 1; round <= 3; round++) {
    victim.send(Buffer.alloc(40), server.local.port); // stands for a spoofed datagram: the victim's address, no reply needed
    await waitFor(() => server.counters.dropped['reply-budget'] + server.counters.toConnectees.datagrams >= 40 * round);
    await sleep(30);
    const got = victim.inbox.reduce((n, m) => n + m.msg.length, 0);
    assert.equal(got, Math.floor((64 * 40 * round) / 100) * 100, `round ${round}: whole replies up to 64x`);
    assert.ok(got <= 64 * 40 * round, `victim got ${got} bytes for ${40 * round} sent`);
  }
});

test('close() and abort are idempotent and release every socket', async (t) => {
  const ac = new AbortController();
  const clock = new ManualClock();
  const datapath = datapathOf(t);
  const server = await UdpexposerServer.listen({ listen: { host: '127.0.0.1', port: 0 }, maxClients: 1, peerPolicy: loopbackPeers }, { clock, datapath }, ac.signal);
  const client = await UdpexposerClient.start(
    { listen: { host: '127.0.0.1', port: 0 }, server: { host: '127.0.0.1', port: server.local.port }, target: { host: '127.0.0.1', port: 9 }, maxClients: 1, pingIntervalMs: 10 },
    { clock, datapath },
    ac.signal,
  );
  server.close();
  server.close();
  ac.abort();
  client.close();
  await Promise.all([server.closed, client.closed]);
  assert.equal(clock.pendingTimers, 0, 'keepalive timer cancelled');
});

test('a WireGuard-like tunnel with a bulk TCP download inside passes the default reply budget; a stretch-ACK flow passes with it off', async (t) => {
  const wg = await wireguardLikeUpstream(t);
  const { server } = await start(t, wg.port);
  await waitFor(() => server.client !== undefined);
  const r = await wireguardLikeDownload(t, server.local.port, 2000);
  assert.equal(r.received, 2000);
  assert.equal(server.counters.dropped['reply-budget'], 0);
  t.diagnostic(`through udpexposer: ${(r.bytes / r.sentBytes).toFixed(1)}x in ${r.ms} ms`);
  const lifted = await start(t, wg.port, {}, { replyBudget: 'off' });
  await waitFor(() => lifted.server.client !== undefined);
  const heavy = await wireguardLikeDownload(t, lifted.server.local.port, 2000, 16);
  assert.equal(heavy.received, 2000);
});

test('dual-stack: a server on [::] and a client on [::] carry IPv4 and IPv6 connectees', async (t) => {
  const echo = await echoServer(t);
  const ac = new AbortController();
  const deps = { clock: new ManualClock(), datapath: datapathOf(t) };
  const server = await UdpexposerServer.listen({ listen: { host: '::', port: 0 }, maxClients: 4, peerPolicy: loopbackPeers }, deps, ac.signal);
  const client = await UdpexposerClient.start(
    { listen: { host: '::', port: 0 }, server: { host: '127.0.0.1', port: server.local.port }, target: { host: '127.0.0.1', port: echo.port }, maxClients: 4, pingIntervalMs: 25_000 },
    deps,
    ac.signal,
  );
  t.after(async () => {
    ac.abort();
    await Promise.all([server.closed, client.closed]);
  });
  await waitFor(() => server.client !== undefined);
  assert.deepEqual(server.client, { address: '127.0.0.1', port: client.local.port, authenticated: false });
  const v4 = await udpPeer(t);
  v4.send('over IPv4', server.local.port);
  assert.equal((await v4.next()).msg.toString(), 'over IPv4');
  const v6 = dgram.createSocket('udp6');
  t.after(() => v6.close());
  await new Promise<void>((r) => v6.bind(0, '::1', r));
  const got = once(v6, 'message');
  v6.send('over IPv6', server.local.port, '::1');
  const [msg, from] = (await got) as [Buffer, dgram.RemoteInfo];
  assert.equal(msg.toString(), 'over IPv6');
  assert.equal(from.address, '::1');
  assert.equal(server.connectees, 2);
  assert.equal(client.workers, 2);
});
