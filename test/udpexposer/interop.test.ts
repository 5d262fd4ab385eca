// Byte-level interop on real sockets: plain sockets replay what the real udpexposer 0.3.0 sends
// (wire.json), once in front of a Sluice server and once behind a Sluice client, and check every
// byte Sluice sends back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeReplyToken } from '../../src/protocol/udpexposer/index.js';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import { UdpexposerServer } from '../../src/udpexposer/server.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { vectorKey, wire } from '../protocol/udpexposer/helpers.js';
import { echoServer, sleep, udpPeer, waitFor } from './net.js';

const np = wire.no_password;
const pw = wire.password_mode;
const hex = (h: string) => Buffer.from(h, 'hex');

test('Sluice server <- udpexposer client bytes (password mode)', async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const server = await UdpexposerServer.listen(
    { listen: { host: '127.0.0.1', port: 0 }, maxClients: 4, key: vectorKey, peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }) },
    { clock: new ManualClock() },
    ac.signal,
  );
  const rustClient = await udpPeer(t);
  const connectee = await udpPeer(t);
  rustClient.send(pw.initial_request.token!, server.local.port);
  const retry = (await rustClient.next()).msg.toString('ascii');
  const m = /^eyJhbGciOiJIUzI1NiJ9\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]{43}$/.exec(retry);
  assert.ok(m, retry);
  const digits = /^\{"Retry":(\d{1,20})\}$/.exec(Buffer.from(m[1]!, 'base64url').toString())?.[1];
  assert.ok(digits);
  // the echo exactly as udpexposer's client writes it: {"nonce":<same digits>}
  const input = `${pw.jwt_header_b64url}.${Buffer.from(`{"nonce":${digits}}`).toString('base64url')}`;
  rustClient.send(`${input}.${vectorKey.mac(input).toString('base64url')}`, server.local.port);
  assert.equal((await rustClient.next()).msg.toString('ascii'), pw.registered_reply.token);
  connectee.send(np.connectee_to_server_payload_ascii, server.local.port);
  assert.deepEqual((await rustClient.next()).msg, hex(np.server_to_client_hex));
  rustClient.send(hex(np.client_to_server_hex), server.local.port);
  assert.equal((await connectee.next()).msg.toString('ascii'), np.server_to_connectee_ascii);
  rustClient.send(hex(np.client_to_server_tag_only_hex), server.local.port);
  assert.equal((await connectee.next()).msg.length, np.server_to_connectee_len);
  ac.abort();
  await server.closed;
});

test('Sluice client -> udpexposer server bytes (no password)', async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const echo = await echoServer(t);
  const rustServer = await udpPeer(t);
  const client = await UdpexposerClient.start(
    {
      listen: { host: '127.0.0.1', port: 0 },
      server: { host: '127.0.0.1', port: rustServer.port },
      target: { host: '127.0.0.1', port: echo.port },
      maxClients: 4,
      pingIntervalMs: 300,
    },
    { clock: new ManualClock() },
    ac.signal,
  );
  const ka = await rustServer.next();
  assert.deepEqual(ka.msg, hex(np.keepalive_client_to_server_hex));
  assert.equal(ka.from.port, client.local.port);
  rustServer.send(hex(np.server_to_client_hex), client.local.port);
  assert.equal((await echo.next()).msg.toString('ascii'), np.connectee_to_server_payload_ascii);
  assert.deepEqual((await rustServer.next()).msg, hex(np.server_to_client_hex), 'the echo comes back under tag 1');
  // too small from the server (udpexposer drops n <= 2 too)
  rustServer.send(hex(np.client_to_server_tag_only_hex), client.local.port);
  // frames from anyone but the server are ignored (udpexposer would forward them)
  const stranger = await udpPeer(t);
  stranger.send(hex(np.server_to_client_hex), client.local.port);
  await waitFor(() => client.counters.dropped['foreign-source'] === 1 && client.counters.dropped.short === 1);
  await sleep(30);
  assert.equal(echo.inbox.length, 0);
  ac.abort();
  await client.closed;
});

test('Sluice client -> udpexposer server bytes (password mode, u64 echoed digit for digit)', async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const rustServer = await udpPeer(t);
  const clock = new ManualClock();
  const client = await UdpexposerClient.start(
    {
      listen: { host: '127.0.0.1', port: 0 },
      server: { host: '127.0.0.1', port: rustServer.port },
      target: { host: '127.0.0.1', port: 9 },
      maxClients: 4,
      pingIntervalMs: 1000,
      key: vectorKey,
    },
    { clock },
    ac.signal,
  );
  assert.equal((await rustServer.next()).msg.toString('ascii'), pw.initial_request.token);
  clock.advance(1000);
  assert.equal((await rustServer.next()).msg.toString('ascii'), pw.initial_request.token, 'the keepalive repeats every -i');
  rustServer.send(encodeReplyToken({ kind: 'retry', value: 18446744073709551000n }, vectorKey), client.local.port);
  assert.equal((await rustServer.next()).msg.toString('ascii'), pw.echo_request_example.token);
  rustServer.send(pw.retry_reply.token!, client.local.port);
  const echo2 = (await rustServer.next()).msg.toString('ascii');
  assert.equal(Buffer.from(echo2.split('.')[1]!, 'base64url').toString(), '{"nonce":17558671654549087794}');
  assert.equal(client.authenticated, false);
  rustServer.send(pw.registered_reply.token!, client.local.port);
  await waitFor(() => client.authenticated);
  ac.abort();
  await client.closed;
});

test('Sluice client: -n bounds worker sockets; the least recently used tag is closed', async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const echo = await echoServer(t);
  const rustServer = await udpPeer(t);
  const closedTags: number[] = [];
  const client = await UdpexposerClient.start(
    {
      listen: { host: '127.0.0.1', port: 0 },
      server: { host: '127.0.0.1', port: rustServer.port },
      target: { host: '127.0.0.1', port: echo.port },
      maxClients: 2,
      pingIntervalMs: 60_000,
    },
    { clock: new ManualClock(), onEvent: (e) => void (e.type === 'worker-closed' && closedTags.push(e.tag)) },
    ac.signal,
  );
  await rustServer.next(); // keepalive
  for (const tag of [1, 2, 1, 3]) {
    rustServer.send(Buffer.concat([Buffer.from([0, tag]), Buffer.from(`t${tag}`)]), client.local.port);
    const back = await rustServer.next();
    assert.equal(back.msg.readUInt16BE(0), tag);
    assert.equal(back.msg.subarray(2).toString(), `t${tag}`);
  }
  assert.equal(client.workers, 2);
  assert.deepEqual(closedTags, [2], 'tag 2 was least recently used when tag 3 arrived');
  assert.equal(new Set(echo.inbox.map((m) => m.from.port)).size, 3, 'one worker socket per tag');
});

test('Sluice client refuses an IPv6 server from an IPv4 listen address', async () => {
  await assert.rejects(
    UdpexposerClient.start(
      { listen: { host: '0.0.0.0', port: 0 }, server: { host: '::1', port: 1 }, target: { host: '127.0.0.1', port: 2 }, maxClients: 1, pingIntervalMs: 1000 },
      { clock: new ManualClock() },
      new AbortController().signal,
    ),
    (e: Error & { code?: string }) => e.code === 'SLUICE_ERR_USAGE',
  );
});
