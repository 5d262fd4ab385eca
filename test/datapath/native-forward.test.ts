import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { tunnelOpener, tunnelSealer } from '../../src/datapath/tunnel-keys.js';
import { CREDIT_CHUNK, OffloadGroup, offload, type TunnelEnd } from '../../src/datapath/offload.js';
import { OffloadPools } from '../../src/datapath/offload-pool.js';
import type { SocketOpener, SocketSealer } from '../../src/datapath/socket-keys.js';
import type { UdpListener } from '../../src/datapath/udp-datapath.js';
import { DatagramOpener, DatagramSealer } from '../../src/protocol/tunnel/index.js';
import { sleep, waitFor } from '../helpers/net.js';
import { inboxSocket as socket } from './forwarded.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

const TO_PEER = Buffer.alloc(32, 7);
const FROM_PEER = Buffer.alloc(32, 9);
const PEER_KEY_ID = 77;
const OWN_KEY_ID = 55;
const TAG = 9;

/**
 * A gateway-like setup on one native engine: a public listener and a tunnel socket, the tunnel's
 * keys, a client and a peer (the agent) as plain dgram sockets that seal and open with the js
 * reference implementation. `js` counts what reached JavaScript on each socket.
 */
async function rig(t: TestContext) {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  const js = { publicSide: 0, tunnel: 0, tunnelOpened: 0 };
  let opener!: SocketOpener;
  const listen = async (onDatagram: (buf: Buffer) => void): Promise<UdpListener> => dp.listen('127.0.0.1', 0, { onDatagram, onSendError: () => {} });
  const pub = await listen(() => js.publicSide++);
  const tunnel = await listen((buf) => {
    js.tunnel++;
    if (opener.open(buf).ok) js.tunnelOpened++;
  });
  const sealer: SocketSealer = tunnelSealer(dp, { key: TO_PEER, direction: 'gateway-to-agent', peerKeyId: PEER_KEY_ID }, () => tunnel);
  opener = tunnelOpener(dp, { key: FROM_PEER, direction: 'agent-to-gateway', keyId: OWN_KEY_ID });
  const client = await socket(t);
  const peer = await socket(t);
  const peerOpener = new DatagramOpener({ key: TO_PEER, direction: 'gateway-to-agent', keyId: PEER_KEY_ID });
  const peerSealer = new DatagramSealer({ key: FROM_PEER, direction: 'agent-to-gateway', peerKeyId: OWN_KEY_ID });
  const counted = { to: 0, from: 0 };
  const tunnelEnd = (grant: (want: number) => number = () => -1): TunnelEnd => ({
    kind: 'tunnel', sealer, opener, tag: TAG, peer: { address: '127.0.0.1', port: peer.port }, pinPeer: true, grant,
    forwarded: (to, from) => {
      counted.to += to;
      counted.from += from;
    },
    valid: () => true,
  });
  const clientEnd = { kind: 'client' as const, listener: pub, address: '127.0.0.1', port: client.port };
  // The peer's first datagram reaches JavaScript and binds the opener to the tunnel socket.
  peer.send(peerSealer.sealData(TAG, Buffer.from('hello')), tunnel.local.port);
  await waitFor(() => js.tunnelOpened === 1, 'the first tunnel datagram opened in JavaScript');
  return { dp, js, pub, tunnel, sealer, opener, client, peer, peerOpener, peerSealer, tunnelEnd, clientEnd, counted };
}

test('an offloaded session moves both directions inside the batch: client datagrams sealed to the peer, the peer\'s opened to the client, none through JavaScript', { skip }, async (t) => {
  const r = await rig(t);
  const o = offload(r.clientEnd, r.tunnelEnd(), 1500, 0);
  assert.ok(o, 'installed');
  const sent: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const b = Buffer.alloc(10 + i, i);
    sent.push(b);
    r.client.send(b, r.pub.local.port);
  }
  await waitFor(() => r.peer.inbox.length === 20, `20 sealed datagrams at the peer (got ${r.peer.inbox.length})`);
  const opened = r.peer.inbox.map((d) => r.peerOpener.open(d));
  opened.forEach((x, i) => {
    assert.ok(x.ok && x.datagram.kind === 'data', `datagram ${i} opens`);
    if (!x.ok || x.datagram.kind !== 'data') return;
    assert.equal(x.datagram.tag, TAG);
    assert.equal(x.datagram.sequence, i);
    assert.equal(x.datagram.origin, undefined);
    assert.deepEqual(Buffer.from(x.datagram.payload), sent[i]);
  });
  assert.equal(r.js.publicSide, 0, 'no client datagram reached JavaScript');
  // The js sealer takes the next sequence of the same counter: no nonce is used twice.
  assert.equal(r.sealer.nextSequence, 20);
  r.sealer.sendData(TAG, Buffer.from('from js'), undefined, r.peer.port, '127.0.0.1');
  await waitFor(() => r.peer.inbox.length === 21, 'the js-sealed datagram');
  const last = r.peerOpener.open(r.peer.inbox[20]!);
  assert.ok(last.ok && last.datagram.sequence === 20);

  const replies: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const b = Buffer.from(`reply ${i}`);
    replies.push(b);
    r.peer.send(r.peerSealer.sealData(TAG, b), r.tunnel.local.port);
  }
  await waitFor(() => r.client.inbox.length === 20, `20 replies at the client (got ${r.client.inbox.length})`);
  assert.deepEqual(r.client.inbox, replies);
  assert.equal(r.js.tunnel, 1, 'only the first tunnel datagram reached JavaScript');
  assert.equal(o.datagramsToTunnel, 20);
  assert.equal(o.bytesToTunnel, sent.reduce((n, b) => n + b.length, 0));
  assert.equal(o.datagramsFromTunnel, 20);
  assert.equal(o.bytesFromTunnel, replies.reduce((n, b) => n + b.length, 0));
  assert.equal(o.sendErrors, 0);
  assert.ok(o.live);

  // A burst of equal-sized datagrams (one harvest, sent as UDP_SEGMENT runs where the kernel has
  // it) arrives whole and in order both ways.
  const burst = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1200, i));
  for (const b of burst) r.client.send(b, r.pub.local.port);
  await waitFor(() => r.peer.inbox.length === 61, `the burst at the peer (got ${r.peer.inbox.length - 21})`);
  r.peer.inbox.slice(21).forEach((d, i) => {
    const x = r.peerOpener.open(d);
    assert.ok(x.ok && x.datagram.kind === 'data' && Buffer.from(x.datagram.payload).equals(burst[i]!), `burst datagram ${i}`);
  });
  for (const b of burst) r.peer.send(r.peerSealer.sealData(TAG, b), r.tunnel.local.port);
  await waitFor(() => r.client.inbox.length === 60, `the burst at the client (got ${r.client.inbox.length - 20})`);
  assert.deepEqual(r.client.inbox.slice(20), burst);
  assert.equal(r.js.publicSide, 0);
  assert.equal(r.js.tunnel, 1);

  // What the entries cannot decide reaches JavaScript: another tag, another source, an origin block.
  r.peer.send(r.peerSealer.sealData(TAG + 1, Buffer.from('other tag')), r.tunnel.local.port);
  r.peer.send(r.peerSealer.sealData(TAG, Buffer.from('origin'), Buffer.from([0, 3, 4, 0x9c, 0x40, 198, 51, 100, 7])), r.tunnel.local.port);
  const elsewhere = await socket(t);
  elsewhere.send(r.peerSealer.sealData(TAG, Buffer.from('moved')), r.tunnel.local.port);
  await waitFor(() => r.js.tunnel === 4, `three datagrams for JavaScript (got ${r.js.tunnel - 1})`);
  assert.equal(r.client.inbox.length, 60);

  // Removed: the client's datagrams reach JavaScript again; the counters keep their values.
  o.close();
  r.client.send(Buffer.from('after'), r.pub.local.port);
  await waitFor(() => r.js.publicSide === 1, 'the datagram after close in JavaScript');
  assert.equal(o.datagramsToTunnel, 60);
  assert.equal(o.live, false);
});

test('the send budget\'s credit bounds what the batch forwards toward the tunnel; the rest reaches JavaScript; chunks double up to CREDIT_CHUNK', { skip }, async (t) => {
  const r = await rig(t);
  const asked: number[] = [];
  let give = 0;
  const o = offload(r.clientEnd, r.tunnelEnd((want) => {
    asked.push(want);
    return Math.min(want, give);
  }), 1500, 0);
  assert.ok(o);
  // No credit at install: a burst of new sessions must not each hold credit they never use.
  assert.equal(o.credit, 0);
  r.client.send(Buffer.from('first'), r.pub.local.port);
  await waitFor(() => r.js.publicSide === 1, 'the first datagram in JavaScript');
  give = 3;
  o.refill();
  assert.equal(asked.at(-1), 8, 'the first chunk asked is 8');
  assert.equal(o.credit, 3, 'the budget gave 3');
  for (let i = 0; i < 5; i++) r.client.send(Buffer.from(`d${i}`), r.pub.local.port);
  await waitFor(() => r.peer.inbox.length + r.js.publicSide === 6, 'five datagrams, forwarded or not');
  assert.equal(r.peer.inbox.length, 3, 'three forwarded under the credit');
  assert.equal(r.js.publicSide, 3, 'two more for JavaScript');
  assert.equal(o.credit, 0);
  give = 1000;
  for (let i = 0; i < 6; i++) o.refill();
  assert.deepEqual(asked.slice(-6), [16, 32, 64, 128, 128, 128].map((x) => Math.min(x, CREDIT_CHUNK)));
  o.credit = -1;
  for (let i = 0; i < 10; i++) r.client.send(Buffer.from(`e${i}`), r.pub.local.port);
  await waitFor(() => r.peer.inbox.length === 13, 'no limit with credit -1');
  assert.equal(r.js.publicSide, 3);
  o.close();
});

test('under a reply budget the batch forwards at most ratio x what the client sent; the excess reaches JavaScript', { skip }, async (t) => {
  const r = await rig(t);
  const o = offload(r.clientEnd, r.tunnelEnd(), 1500, 2);
  assert.ok(o);
  o.allowance = 0;
  r.client.send(Buffer.alloc(10), r.pub.local.port);
  await waitFor(() => r.peer.inbox.length === 1, 'the client datagram sealed');
  // 2 x 10 bytes allowed: one 15-byte reply fits, the second does not.
  r.peer.send(r.peerSealer.sealData(TAG, Buffer.alloc(15, 1)), r.tunnel.local.port);
  await waitFor(() => r.client.inbox.length === 1, 'the first reply');
  r.peer.send(r.peerSealer.sealData(TAG, Buffer.alloc(15, 2)), r.tunnel.local.port);
  await waitFor(() => r.js.tunnel === 2, 'the second reply in JavaScript');
  assert.equal(r.client.inbox.length, 1);
  assert.equal(o.datagramsFromTunnel, 1);
  o.close();
});

test('closing a socket or releasing a key removes the entries that use it', { skip }, async (t) => {
  const r = await rig(t);
  const o = offload(r.clientEnd, r.tunnelEnd(), 1500, 0);
  assert.ok(o?.live);
  await r.pub.close();
  assert.equal(o.live, false, 'the public listener closed');
  const r2 = await rig(t);
  const o2 = offload(r2.clientEnd, r2.tunnelEnd(), 1500, 0);
  assert.ok(o2?.live);
  r2.sealer.release();
  assert.equal(o2.live, false, 'the sealing key released');
  // A released sealer keeps its sequence: what it seals in JavaScript afterwards never reuses one.
  r2.client.send(Buffer.from('x'), r2.pub.local.port);
  await waitFor(() => r2.js.publicSide === 1, 'to JavaScript once removed');
  await sleep(20);
  assert.equal(r2.peer.inbox.length, 0);
  const r3 = await rig(t);
  const o3 = offload(r3.clientEnd, r3.tunnelEnd(), 1500, 0);
  assert.ok(o3?.live);
  r3.opener.release();
  assert.equal(o3.live, false, 'the opening key released');
  // A group its tunnel side gave closes it at once (new keys, a moved address, a re-tag).
  const r4 = await rig(t);
  const group = new OffloadGroup();
  const o4 = offload(r4.clientEnd, { ...r4.tunnelEnd(), groups: [group] }, 1500, 0);
  assert.ok(o4?.live);
  assert.equal(group.size, 1);
  group.closeAll();
  assert.equal(o4.closed, true);
  assert.equal(o4.live, false);
  assert.equal(group.size, 0);
  const o5 = offload(r4.clientEnd, { ...r4.tunnelEnd(), groups: [group] }, 1500, 0);
  assert.ok(o5?.live, 'installed again');
  o5.close();
  assert.equal(group.size, 0, 'a closed offload leaves its group');
});

test('an entry the engine removed reads as gone even when another session\'s entry takes its id; a destroyed engine leaves none live', { skip }, async (t) => {
  const r = await rig(t);
  const second = await r.dp.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
  const o = offload(r.clientEnd, r.tunnelEnd(), 1500, 0);
  assert.ok(o?.live);
  await r.pub.close(); // the engine removes both entries; their ids are free
  const reused = offload({ ...r.clientEnd, listener: second }, r.tunnelEnd(), 1500, 0);
  assert.ok(reused?.live);
  assert.deepEqual([reused.toTunnel, reused.fromTunnel].sort(), [o.toTunnel, o.fromTunnel].sort(), 'the freed ids were given to the new entries');
  assert.equal(o.live, false, 'the first session\'s entries are gone, whoever holds their ids now');
  r.dp.destroy();
  assert.equal(reused.live, false, 'the engine destroyed');
});

test('no offload on the js datapath', async (t) => {
  const { jsDatapath } = await import('../../src/datapath/js-datapath.js');
  const l = await jsDatapath.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
  t.after(() => l.close());
  const sealer = tunnelSealer(jsDatapath, { key: TO_PEER, direction: 'gateway-to-agent', peerKeyId: 1 }, () => l);
  const opener = tunnelOpener(jsDatapath, { key: FROM_PEER, direction: 'agent-to-gateway', keyId: 2 });
  const end: TunnelEnd = { kind: 'tunnel', sealer, opener, tag: 1, peer: { address: '127.0.0.1', port: 9 }, pinPeer: true, grant: () => -1, forwarded: () => {}, valid: () => true };
  assert.equal(offload({ kind: 'client', listener: l, address: '127.0.0.1', port: 9 }, end, 1500, 0), null);
});

test('with its send budget\'s pool, a seal entry whose credit is used up is refilled in the batch up to the round\'s budget; the excess is dropped there and counted by reason, none reaches JavaScript', { skip }, async (t) => {
  const r = await rig(t);
  // 20 datagrams per round of 1 s (plus the spare of max(20 / 8, 4)): the burst below fits one or two rounds.
  const pools = new OffloadPools(20, 1000);
  t.after(() => pools.close());
  let granted = 0;
  const o = offload(r.clientEnd, { ...r.tunnelEnd((want) => (granted += want, want)), pools }, 1500, 0);
  assert.ok(o);
  assert.equal(o.pooled, true, 'the entry draws on the pool');
  assert.equal(o.credit, 0, 'no credit of its own');
  o.refill();
  assert.equal(granted, 0, 'JavaScript grants no chunks to a pooled entry');
  const n = 60;
  for (let i = 0; i < n; i++) r.client.send(Buffer.from(`p${i}`), r.pub.local.port);
  await waitFor(() => r.peer.inbox.length + o.droppedBudget + o.droppedShare === n, 'every datagram forwarded or dropped in the batch');
  const batch = r.peer.inbox.length;
  assert.ok(batch >= 20 && batch <= 2 * 24, `the pool forwarded ${batch} (one or two rounds of 20 + a spare of 4)`);
  assert.equal(o.datagramsToTunnel, batch);
  // Alone in its pool, its quantum is the whole round: what is left over is the agent's budget.
  assert.equal(o.droppedBudget, n - batch, 'the excess dropped as agent-budget');
  assert.equal(o.droppedShare, 0);
  assert.equal(r.js.publicSide, 0, 'nothing reached JavaScript');
  // Freed: the entry keeps forwarding on its credit alone (none), so everything reaches JavaScript.
  pools.close();
  for (let i = 0; i < 5; i++) r.client.send(Buffer.from(`q${i}`), r.pub.local.port);
  await waitFor(() => r.js.publicSide === 5, 'a freed pool forwards nothing');
  assert.equal(r.peer.inbox.length, batch);
  o.close();
  assert.equal(o.droppedBudget, n - batch, 'the drops stay readable after close');
});

test('an entry with no budget (grant -1) never joins a pool', { skip }, async (t) => {
  const r = await rig(t);
  const pools = new OffloadPools(20, 1000);
  t.after(() => pools.close());
  const o = offload(r.clientEnd, { ...r.tunnelEnd(), pools }, 1500, 0);
  assert.ok(o);
  assert.equal(o.pooled, false);
  assert.equal(o.credit, -1);
  o.close();
});

test('a seal entry joins its pool with what its session had banked in JavaScript: a backlog beyond the round\'s budget is forwarded from the bank, not dropped', { skip }, async (t) => {
  const r = await rig(t);
  // 20 datagrams per round of 1 s, a spare of 4 for a fresh entry, and a bank of 40 carried over
  // (a session handed over again, e.g. after its move to a socket of its own): 64 in its first round.
  const pools = new OffloadPools(20, 1000);
  t.after(() => pools.close());
  const o = offload(r.clientEnd, { ...r.tunnelEnd((want) => want), pools, bank: () => 40 }, 1500, 0);
  assert.ok(o);
  assert.equal(o.pooled, true);
  const n = 60;
  for (let i = 0; i < n; i++) r.client.send(Buffer.from(`b${i}`), r.pub.local.port);
  await waitFor(() => r.peer.inbox.length + o.droppedBudget + o.droppedShare === n, 'every datagram forwarded or dropped in the batch');
  assert.equal(o.droppedBudget + o.droppedShare, 0, 'nothing dropped: the bank covered the backlog');
  assert.equal(r.peer.inbox.length, n);
  o.close();
});
