// The udpexposer channels in the native batch (native/src/forward-tag.cc, datapath/tag-offload.ts):
// a Sluice server and client, each on its own engine; an established channel's datagrams are
// relayed both ways without a JavaScript call (the roles' `forwardedInBatch`, read from the
// engines' counters), every counter still adds up, and whatever JavaScript must decide (a new
// connectee, a token in password mode, keepalives) still reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { TOKEN_PREFIX_BYTES } from '../../src/protocol/udpexposer/constants.js';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { UdpexposerServer } from '../../src/udpexposer/server.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { vectorKey } from '../protocol/udpexposer/helpers.js';
import { udpPeer, waitFor } from './net.js';
import { nativePair as pair } from './native-pair.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

async function roundTrips(peer: Awaited<ReturnType<typeof udpPeer>>, port: number, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const p = Buffer.from(`${tag} ${i} `.padEnd(64, '.'));
    peer.send(p, port);
    assert.deepEqual((await peer.next()).msg, p, `${tag} ${i} comes back unchanged`);
  }
}

for (const mode of ['no password', '-P'] as const) {
  const key = mode === '-P' ? vectorKey : undefined;

  test(`native udpexposer pair (${mode}): an established channel is relayed in the batch both ways in both roles; a new connectee still goes through JavaScript`, { skip }, async (t) => {
    const { server, client, echo } = await pair(t, key);
    const a = await udpPeer(t);
    await roundTrips(a, server.local.port, 3, 'a');
    await waitFor(() => server.offloaded === 1 && client.offloaded === 1);
    const s0 = server.counters.forwardedInBatch;
    const c0 = client.counters.forwardedInBatch;
    await roundTrips(a, server.local.port, 50, 'a');
    // Each round trip is one datagram each way through each role, none of them in JavaScript.
    assert.equal(server.counters.forwardedInBatch - s0, 100);
    assert.equal(client.counters.forwardedInBatch - c0, 100);
    // The counters count every datagram, whichever path carried it.
    const sc = server.counters;
    assert.equal(sc.fromConnectees.datagrams, 53);
    assert.equal(sc.toConnectees.datagrams, 53);
    assert.equal(sc.toClient.bytes, sc.fromConnectees.bytes + 2 * 53);
    assert.equal(sc.fromConnectees.bytes, 53 * 64);
    const cc = client.counters;
    assert.equal(cc.toTarget.datagrams, 53);
    assert.equal(cc.toServer.datagrams, 53);
    assert.equal(cc.toServer.bytes, cc.fromTarget.bytes + 2 * 53);
    assert.equal(echo.inbox.length, 53, 'the echo service got every datagram once');

    // A second connectee: its first datagram makes a tag and a worker in JavaScript.
    const b = await udpPeer(t);
    const s1 = server.counters.forwardedInBatch;
    const c1 = client.counters.forwardedInBatch;
    await roundTrips(b, server.local.port, 1, 'b');
    assert.equal(server.counters.connecteesAdded, 2);
    assert.equal(client.counters.workersOpened, 2);
    assert.equal(server.counters.forwardedInBatch, s1, 'the new tag went through JavaScript at the server');
    // At the client the frame made the worker in JavaScript; its socket opened with its entries, so the answer came back in the batch.
    assert.equal(client.counters.forwardedInBatch, c1 + 1, 'and at the client, the frame');
    await roundTrips(b, server.local.port, 5, 'b');
    await waitFor(() => server.offloaded === 2 && client.offloaded === 2);
    if (key !== undefined) assert.ok(client.authenticated);
  });
}

test('native udpexposer pair (-P): a connectee datagram that begins like a token is judged in JavaScript, then relayed as data', { skip }, async (t) => {
  const { server } = await pair(t, vectorKey);
  const a = await udpPeer(t);
  await roundTrips(a, server.local.port, 3, 'a');
  await waitFor(() => server.offloaded === 1);
  const tokens = server.counters.tokens;
  const looksLikeToken = Buffer.concat([TOKEN_PREFIX_BYTES, Buffer.from('not.a-token')]);
  a.send(looksLikeToken, server.local.port);
  assert.deepEqual((await a.next()).msg, looksLikeToken);
  assert.equal(server.counters.tokens, tokens + 1, 'the server looked at it as a token');
  assert.equal(server.counters.invalidTokens, 1);
  assert.equal(server.client?.authenticated, true, 'the client stayed');
});

test('native udpexposer pair: an empty datagram from a connectee is a keepalive in JavaScript, not relayed by the batch (no password)', { skip }, async (t) => {
  const { server, client } = await pair(t);
  const a = await udpPeer(t);
  await roundTrips(a, server.local.port, 3, 'a');
  await waitFor(() => server.offloaded === 1);
  const keepalives = server.counters.keepalives;
  a.send(Buffer.alloc(0), server.local.port);
  await waitFor(() => server.counters.keepalives === keepalives + 1);
  // The protocol defines this: an empty datagram re-points the client (the mode is unauthenticated);
  // the offloaded channels named the old client, so their entries went.
  assert.equal(server.client?.port, a.port);
  assert.equal(server.offloaded, 0);
  assert.ok(client.counters.keepalivesSent >= 1);
});

test('native udpexposer pair: the reply budget holds in the batch: an amplifying service reaches a connectee at most 64x what it sent', { skip }, async (t) => {
  if (!loaded.ok) return;
  const serverDp = new NativeDatapath(loaded.binding, loaded.layout, {});
  const clientDp = new NativeDatapath(loaded.binding, loaded.layout, {});
  t.after(() => {
    serverDp.destroy();
    clientDp.destroy();
  });
  // Answers a 64-byte datagram with as many 64-byte ones as asked in its first byte.
  const amp = await udpPeer(t, (msg, from, s) => {
    for (let i = 0; i < msg[0]!; i++) s.send(Buffer.alloc(64, i), from.port, from.address);
  });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const clock = new ManualClock();
  const server = await UdpexposerServer.listen(
    { listen: { host: '127.0.0.1', port: 0 }, maxClients: 8, replyBudget: { ratio: 64, windowMs: 10_000 }, peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }) },
    { clock, datapath: serverDp },
    ac.signal,
  );
  await UdpexposerClient.start(
    { listen: { host: '127.0.0.1', port: 0 }, server: { host: '127.0.0.1', port: server.local.port }, target: { host: '127.0.0.1', port: amp.port }, maxClients: 8, pingIntervalMs: 25_000 },
    { clock, datapath: clientDp },
    ac.signal,
  );
  await waitFor(() => server.client !== undefined);
  const victim = await udpPeer(t);
  victim.socket.setRecvBufferSize(1 << 20); // a few hundred answers at once must not overflow it
  // Three 1:1 round trips hand the channel to the batch.
  for (let i = 0; i < 3; i++) {
    victim.send(Buffer.alloc(64, 1), server.local.port);
    await victim.next();
  }
  await waitFor(() => server.offloaded === 1);
  // Then one datagram asks for 100 answers: 64 fit its budget (3 + 1 datagrams received, 3 sent: 64 x 4 - 3 = 253 left).
  victim.send(Buffer.alloc(64, 100), server.local.port);
  await waitFor(() => server.counters.dropped['reply-budget'] + server.counters.toConnectees.datagrams >= 103);
  // Counted as sent does not mean received yet: wait for them, then for any extra one.
  await waitFor(() => victim.inbox.length >= 100, 5000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(victim.inbox.length, 100, 'all 100 fit');
  victim.inbox.length = 0;
  // Now ask for 255 more: the budget left is 64 x 5 - 103 = 217.
  victim.send(Buffer.alloc(64, 255), server.local.port);
  await waitFor(() => server.counters.dropped['reply-budget'] + server.counters.toConnectees.datagrams >= 103 + 255, 5000);
  assert.equal(server.counters.toConnectees.datagrams, 103 + 217);
  assert.equal(server.counters.dropped['reply-budget'], 255 - 217);
  await waitFor(() => victim.inbox.length >= 217, 5000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(victim.inbox.length, 217, 'the victim got exactly what fit');
  assert.ok(server.counters.forwardedInBatch > 0);
});

test('native udpexposer server: frames in the batch are byte for byte the wire, and only the registered client can speak for a tag', { skip }, async (t) => {
  if (!loaded.ok) return;
  const dp = new NativeDatapath(loaded.binding, loaded.layout, {});
  t.after(() => dp.destroy());
  const ac = new AbortController();
  t.after(() => ac.abort());
  const server = await UdpexposerServer.listen(
    { listen: { host: '127.0.0.1', port: 0 }, maxClients: 8, peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }) },
    { clock: new ManualClock(), datapath: dp },
    ac.signal,
  );
  // A bare socket as the client: it registers with an empty datagram and answers each frame by hand.
  const client = await udpPeer(t);
  client.send(Buffer.alloc(0), server.local.port);
  await waitFor(() => server.client?.port === client.port);
  const connectee = await udpPeer(t);
  const other = await udpPeer(t);
  for (let i = 0; i < 20; i++) {
    const p = Buffer.from([i, 0xff, 0x00, i]);
    connectee.send(p, server.local.port);
    const frame = (await client.next()).msg;
    assert.deepEqual(frame, Buffer.concat([Buffer.from([0, 1]), p]), `frame ${i}: tag 1 then the payload`);
    client.send(Buffer.concat([frame.subarray(0, 2), Buffer.from(`re ${i}`)]), server.local.port);
    assert.equal((await connectee.next()).msg.toString(), `re ${i}`);
  }
  assert.equal(server.offloaded, 1);
  assert.ok(server.counters.forwardedInBatch >= 30, `in the batch: ${server.counters.forwardedInBatch}`);
  // Another source sending a frame under tag 1 is a connectee of its own, never the client speaking.
  other.send(Buffer.from([0, 1, 0x41]), server.local.port);
  const framed = (await client.next()).msg;
  assert.deepEqual(framed, Buffer.from([0, 2, 0, 1, 0x41]), 'relayed to the client as tag 2, its own');
  assert.equal(connectee.inbox.length, 0);
});

test('native udpexposer pair: an evicted connectee and an evicted worker take their entries with them, their counts folded in', { skip }, async (t) => {
  const { server, client } = await pair(t, undefined, { maxClients: 1, evictIdleAfterMs: 0 }, 1);
  const a = await udpPeer(t);
  await roundTrips(a, server.local.port, 10, 'a');
  await waitFor(() => server.offloaded === 1 && client.offloaded === 1);
  const b = await udpPeer(t);
  await roundTrips(b, server.local.port, 10, 'b');
  // a's connectee and worker were evicted for b's (one each at most): b's channel is the batch's now.
  await waitFor(() => server.offloaded === 1 && client.offloaded === 1);
  assert.equal(server.counters.connecteesEvicted, 1);
  assert.equal(client.counters.workersClosed, 1);
  assert.equal(server.counters.fromConnectees.datagrams, 20, 'every datagram counted, the evicted channel\'s too');
  assert.equal(server.counters.toConnectees.datagrams, 20);
  assert.equal(client.counters.toTarget.datagrams, 20);
  assert.equal(client.counters.toServer.datagrams, 20);
  assert.ok(server.counters.forwardedInBatch >= 20 && client.counters.forwardedInBatch >= 20);
  // a again: a new connectee (new tag) through JavaScript, and b's entries go in turn.
  await roundTrips(a, server.local.port, 1, 'a again');
  assert.equal(server.counters.connecteesEvicted, 2);
  assert.equal(server.counters.connecteesAdded, 3);
});

test('native udpexposer client: a frame under an offloaded tag from anyone but the server is dropped in JavaScript, never relayed by the batch', { skip }, async (t) => {
  const { server, client, echo } = await pair(t);
  const a = await udpPeer(t);
  await roundTrips(a, server.local.port, 3, 'a');
  await waitFor(() => client.offloaded === 1);
  const seen = echo.inbox.length;
  const rogue = await udpPeer(t);
  rogue.send(Buffer.from([0, 1, 0x65, 0x76, 0x69, 0x6c]), client.local.port);
  await waitFor(() => client.counters.dropped['foreign-source'] === 1);
  await roundTrips(a, server.local.port, 1, 'a after');
  assert.equal(echo.inbox.length, seen + 1, 'only the real frame reached the service');
  assert.equal(rogue.inbox.length, 0);
});
