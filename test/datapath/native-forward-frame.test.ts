import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { tunnelOpener, tunnelSealer } from '../../src/datapath/tunnel-keys.js';
import { offload, type TunnelEnd } from '../../src/datapath/offload.js';
import type { SocketOpener } from '../../src/datapath/socket-keys.js';
import type { UdpListener } from '../../src/datapath/udp-datapath.js';
import { DatagramOpener, DatagramSealer, type DatagramRejectReason } from '../../src/protocol/tunnel/index.js';
import { ICE_DATA_PREFIX, frameIceData, unframeIceData } from '../../src/ice/channel.js';
import { waitFor } from '../helpers/net.js';
import { inboxSocket as socket } from './forwarded.js';

// Framed forwarding entries (native/src/forward-peer.cc): a direct peer path's datagrams are
// tunnel datagrams behind ICE's data prefix; the batch must put the same bytes on the wire as the
// JavaScript framing, and open the peer's framed datagrams behind the prefix.

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

const TO_PEER = Buffer.alloc(32, 3);
const FROM_PEER = Buffer.alloc(32, 5);
const PEER_KEY_ID = 4242;
const OWN_KEY_ID = 1717;
/** The peer reads our datagrams on TAG and answers on TAG_IN (a direct path: the peer bit set). */
const TAG = 21;
const TAG_IN = (0x8000_0000 | 21) >>> 0;

/**
 * An agent-like setup on one native engine: a connect listener (its client is the plain side) and
 * the gateway socket that carries ICE; the peer agent is a dgram socket sealing and opening with
 * the js reference implementation and framing as ice/channel.ts does.
 */
async function rig(t: TestContext) {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  const js = { listener: 0, ice: 0, opened: 0, rejected: [] as DatagramRejectReason[] };
  let opener!: SocketOpener;
  const listen = async (onDatagram: (buf: Buffer) => void): Promise<UdpListener> => dp.listen('127.0.0.1', 0, { onDatagram, onSendError: () => {} });
  const pub = await listen(() => js.listener++);
  const gateway = await listen((buf) => {
    js.ice++;
    const inner = unframeIceData(buf);
    if (!inner) return;
    const r = opener.open(inner);
    if (r.ok) js.opened++;
    else js.rejected.push(r.reason);
  });
  const sealer = tunnelSealer(dp, { key: TO_PEER, direction: 'agent-to-gateway', peerKeyId: PEER_KEY_ID }, () => gateway);
  opener = tunnelOpener(dp, { key: FROM_PEER, direction: 'gateway-to-agent', keyId: OWN_KEY_ID });
  const client = await socket(t);
  const peer = await socket(t);
  const peerOpener = new DatagramOpener({ key: TO_PEER, direction: 'agent-to-gateway', keyId: PEER_KEY_ID });
  const peerSealer = new DatagramSealer({ key: FROM_PEER, direction: 'gateway-to-agent', peerKeyId: OWN_KEY_ID });
  const end: TunnelEnd = {
    kind: 'tunnel', sealer, opener, tag: TAG, tagIn: TAG_IN, frame: ICE_DATA_PREFIX, peer: { address: '127.0.0.1', port: peer.port }, pinPeer: true,
    grant: () => -1, forwarded: () => {}, valid: () => true,
  };
  // The peer's first framed datagram reaches JavaScript, which binds the key to the socket as an ICE key.
  peer.send(frameIceData(peerSealer.sealData(TAG_IN, Buffer.from('hello'))), gateway.local.port);
  await waitFor(() => js.opened === 1, 'the first framed datagram opened in JavaScript');
  const clientEnd = { kind: 'client' as const, listener: pub, address: '127.0.0.1', port: client.port };
  return { dp, js, pub, gateway, sealer, client, peer, peerOpener, peerSealer, end, clientEnd };
}

test('a framed entry puts on the wire the bytes the js sealer and ICE framing give, and opens the peer\'s framed datagrams behind the prefix, none through JavaScript', { skip }, async (t) => {
  const r = await rig(t);
  const o = offload(r.clientEnd, r.end, 1500, 0);
  assert.ok(o, 'installed');
  // The same key and counter in JavaScript: the reference for every byte.
  const reference = new DatagramSealer({ key: TO_PEER, direction: 'agent-to-gateway', peerKeyId: PEER_KEY_ID });
  const sent = Array.from({ length: 30 }, (_, i) => Buffer.alloc(i === 0 ? 0 : 5 + i * 3, i));
  for (const b of sent) r.client.send(b, r.pub.local.port);
  await waitFor(() => r.peer.inbox.length === 30, `30 framed datagrams at the peer (got ${r.peer.inbox.length})`);
  r.peer.inbox.forEach((wire, i) => {
    assert.equal(wire[0], ICE_DATA_PREFIX, `datagram ${i} is framed`);
    assert.deepEqual(wire, frameIceData(reference.sealData(TAG, sent[i]!)), `datagram ${i}: the js bytes`);
  });
  assert.equal(r.js.listener, 0, 'no client datagram reached JavaScript');
  // A run of equal-sized datagrams (a GSO send where the kernel has it) keeps each one's prefix.
  const run = Array.from({ length: 20 }, (_, i) => Buffer.alloc(1000, i));
  for (const b of run) r.client.send(b, r.pub.local.port);
  await waitFor(() => r.peer.inbox.length === 50, `the run at the peer (got ${r.peer.inbox.length - 30})`);
  r.peer.inbox.slice(30).forEach((wire, i) => assert.deepEqual(wire, frameIceData(reference.sealData(TAG, run[i]!)), `run datagram ${i}`));
  // JavaScript seals on with the next sequence of the same counter.
  assert.equal(r.sealer.nextSequence, 50);

  const replies = Array.from({ length: 25 }, (_, i) => Buffer.from(`reply ${i}`));
  for (const b of replies) r.peer.send(frameIceData(r.peerSealer.sealData(TAG_IN, b)), r.gateway.local.port);
  await waitFor(() => r.client.inbox.length === 25, `25 replies at the client (got ${r.client.inbox.length})`);
  assert.deepEqual(r.client.inbox, replies);
  assert.equal(r.js.ice, 1, 'only the first framed datagram reached JavaScript');
  assert.equal(o.datagramsToTunnel, 50);
  assert.equal(o.datagramsFromTunnel, 25);
  assert.equal(o.bytesFromTunnel, replies.reduce((n, b) => n + b.length, 0));
  assert.equal(o.sendErrors, 0);
});

test('a replayed, a forged and an unframed datagram of a framed entry are not forwarded: they reach JavaScript, which refuses and counts them', { skip }, async (t) => {
  const r = await rig(t);
  const o = offload(r.clientEnd, r.end, 1500, 0);
  assert.ok(o);
  const good = frameIceData(r.peerSealer.sealData(TAG_IN, Buffer.from('genuine')));
  r.peer.send(good, r.gateway.local.port);
  await waitFor(() => r.client.inbox.length === 1, 'the genuine datagram at the client');
  // The same bytes again, the same with a flipped ciphertext bit under a new sequence, and a
  // genuine datagram without the prefix (never opened in the batch under an ICE key).
  r.peer.send(good, r.gateway.local.port);
  const forged = frameIceData(r.peerSealer.sealData(TAG_IN, Buffer.from('forged!')));
  forged[1 + 16 + 2]! ^= 0x40;
  r.peer.send(forged, r.gateway.local.port);
  r.peer.send(r.peerSealer.sealData(TAG_IN, Buffer.from('bare')), r.gateway.local.port);
  // And one more genuine datagram in the same or a later batch: still forwarded.
  r.peer.send(frameIceData(r.peerSealer.sealData(TAG_IN, Buffer.from('after'))), r.gateway.local.port);
  await waitFor(() => r.client.inbox.length === 2 && r.js.ice === 4, `the next genuine one forwarded, three for JavaScript (client ${r.client.inbox.length}, js ${r.js.ice - 1})`);
  assert.deepEqual(r.client.inbox.map(String), ['genuine', 'after']);
  assert.deepEqual(r.js.rejected.sort(), ['auth-failed', 'replayed']);
  assert.equal(o.datagramsFromTunnel, 2);
});
