import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding, type NativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { nativeKeys } from '../../src/datapath/native/native-keys.js';
import { tunnelOpener, tunnelSealer } from '../../src/datapath/tunnel-keys.js';
import { offload, type TunnelEnd } from '../../src/datapath/offload.js';
import { OffloadPools } from '../../src/datapath/offload-pool.js';
import type { SocketOpener } from '../../src/datapath/socket-keys.js';
import { DatagramOpener, DatagramSealer } from '../../src/protocol/tunnel/index.js';
import { sleep, waitFor } from '../helpers/net.js';
import { inboxSocket as socket } from './forwarded.js';

// docs/expose.md, "Excess left in the kernel": a client's own socket whose session the send
// budget refuses for the round is not read until the round ends.

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

const TO_PEER = Buffer.alloc(32, 7);
const FROM_PEER = Buffer.alloc(32, 9);
const TAG = 9;

/** A gateway-like engine: a public listener, a tunnel socket and its keys; a client with a socket of its own, offloaded under `pools`. */
async function rig(t: TestContext, pools: OffloadPools, rcvbufBytes: number) {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  const js = { publicSide: 0, tunnelOpened: 0 };
  let opener!: SocketOpener;
  const listen = (onDatagram: (buf: Buffer) => void) => dp.listen('127.0.0.1', 0, { onDatagram, onSendError: () => {} });
  const pub = await listen(() => js.publicSide++);
  const tunnel = await listen((buf) => {
    if (opener.open(buf).ok) js.tunnelOpened++;
  });
  const sealer = tunnelSealer(dp, { key: TO_PEER, direction: 'gateway-to-agent', peerKeyId: 77 }, () => tunnel);
  opener = tunnelOpener(dp, { key: FROM_PEER, direction: 'agent-to-gateway', keyId: 55 });
  const client = await socket(t);
  const peer = await socket(t);
  peer.send(new DatagramSealer({ key: FROM_PEER, direction: 'agent-to-gateway', peerKeyId: 55 }).sealData(TAG, Buffer.from('hello')), tunnel.local.port);
  await waitFor(() => js.tunnelOpened === 1, 'the first tunnel datagram opened in JavaScript');
  const own = dp.isolate(pub, '127.0.0.1', client.port, rcvbufBytes);
  const end: TunnelEnd = {
    kind: 'tunnel', sealer, opener, tag: TAG, peer: { address: '127.0.0.1', port: peer.port }, pinPeer: true, grant: (want) => want,
    forwarded: () => {}, valid: () => true, pools,
  };
  const o = offload({ kind: 'client', listener: own, address: '127.0.0.1', port: client.port }, end, 1500, 0);
  assert.ok(o?.pooled, 'the session draws on its pool in the batch');
  const keys = nativeKeys(dp)!;
  const b = keys.b as unknown as NativeBinding;
  const state = () => b.parkState!(keys.handle);
  const peerOpener = new DatagramOpener({ key: TO_PEER, direction: 'gateway-to-agent', keyId: 77 });
  return { js, pub, own, o, client, peer, state, peerOpener };
}

test('a flooding client over its budget is read no more than its share: its socket is parked, its excess dropped by the kernel there and counted by the budget\'s reason, no JavaScript and no spin meanwhile', { skip }, async (t) => {
  // 100 datagrams a round of 1 s (and a spare of 12): the flood below is over it at once, and the
  // socket then stays parked long enough to watch the engine not spin on it. Its receive buffer
  // (64 KiB asked) holds about 150 datagrams.
  const pools = new OffloadPools(100, 1000);
  t.after(() => pools.close());
  const r = await rig(t, pools, 64 * 1024);
  const payload = Buffer.alloc(64, 1);
  let sent = 0;
  const flood = (count: number) => {
    for (let i = 0; i < count; i++) r.client.s.send(payload, r.pub.local.port, '127.0.0.1', () => sent++);
  };
  // The first burst is sent before the engine gets a turn (one thread): what the socket cannot
  // hold is the kernel's drop of a socket not read yet, its own (isolated-kernel).
  flood(2000);
  await waitFor(() => sent === 2000 && r.state()[0] >= 1, 'the burst sent, its socket parked');
  const [parks, , parkedNow] = r.state();
  assert.ok(parks >= 1 && parkedNow === 1, `its socket parked (parks ${parks}, parked now ${parkedNow})`);
  assert.ok(r.peer.inbox.length <= 100 + 13, `forwarded no more than a round's budget and spare (${r.peer.inbox.length})`);
  const early = r.own.kernelDrops();
  assert.ok(early > 1000, `the burst's excess dropped by the kernel before any read (${early})`);
  assert.equal(r.own.budgetDrops!(), 0, 'none of those while parked');

  // More flood while it is parked (readable all along): not read, the engine not woken for it,
  // and what the kernel drops now is the budget's: counted with the session's budget drops by
  // the pool's reason (alone in its pool the round's budget is spent: agent-budget).
  const [, , , wakeups] = r.state();
  const cpu = process.cpuUsage();
  flood(2000);
  await waitFor(() => sent === 4000, 'the second burst sent');
  await sleep(300);
  const used = process.cpuUsage(cpu);
  assert.equal(r.state()[2], 1, 'still parked');
  assert.ok(r.state()[3] - wakeups <= 3, `no spin: ${r.state()[3] - wakeups} wake-ups in 300 ms while parked`);
  assert.ok(used.user + used.system < 150_000, `no spin: ${(used.user + used.system) / 1000} ms of CPU in 300 ms`);
  assert.ok(r.peer.inbox.length <= 100 + 13, 'nothing more forwarded in the round');
  const budgetDrops = r.own.budgetDrops!();
  const late = r.own.kernelDrops() - early;
  assert.ok(late > 1000 && budgetDrops === late, `the kernel's drops while parked (${late}) are the budget's (${budgetDrops})`);
  assert.ok(r.o.droppedBudget >= budgetDrops, `counted as agent-budget with the session's drops (${r.o.droppedBudget})`);
  assert.equal(r.o.droppedShare, 0);
  const read = r.peer.inbox.length + r.o.droppedBudget - budgetDrops;
  assert.ok(read <= 100 + 13 + 64, `read no more than its share and one receive's worth beyond (${read} of 4000)`);
  assert.equal(r.js.publicSide, 0, 'no datagram of the session reached JavaScript');
  // The round ends: the socket is read again, the next round's share forwarded.
  await waitFor(() => r.state()[1] >= 1 && r.peer.inbox.length > 100 + 13, 'read again in the next round', 3000);
  assert.equal(r.js.publicSide, 0);
});

test('a client that sends a window over its budget waits in its own socket: everything arrives over the rounds, nothing dropped', { skip }, async (t) => {
  // 40 datagrams a round of 100 ms; a window of 300 queued at once takes several rounds.
  const pools = new OffloadPools(400, 100);
  t.after(() => pools.close());
  const r = await rig(t, pools, 1024 * 1024);
  const n = 300;
  for (let i = 0; i < n; i++) r.client.send(Buffer.from(`w${i}`), r.pub.local.port);
  const what = () => `forwarded ${r.peer.inbox.length}, dropped ${r.o.droppedBudget + r.o.droppedShare}, js ${r.js.publicSide}, parks ${r.state().join(' ')}, kernel ${r.own.kernelDrops()}`;
  await waitFor(() => r.peer.inbox.length === n, `all ${n} forwarded`, 5000).catch((err: Error) => assert.fail(`${err.message}: ${what()}`));
  assert.equal(r.o.droppedBudget + r.o.droppedShare, 0, 'none dropped by the budget');
  assert.equal(r.own.kernelDrops(), 0, 'none dropped by the kernel');
  assert.equal(r.own.budgetDrops!(), 0);
  assert.ok(r.state()[0] >= 1, 'its socket waited parked');
  r.peer.inbox.forEach((d, i) => {
    const x = r.peerOpener.open(d);
    assert.ok(x.ok && x.datagram.kind === 'data' && Buffer.from(x.datagram.payload).toString() === `w${i}`, `datagram ${i} in order`);
  });
  assert.equal(r.js.publicSide, 0);
});
