import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { FORWARD_COUNTERS, NativeSocketOpener, NativeSocketSealer, nativeKeys, type SealBinding } from '../../src/datapath/native/native-keys.js';
import type { NativeListener } from '../../src/datapath/native/native-sockets.js';
import { jsDatapath } from '../../src/datapath/js-datapath.js';
import { SocketOpener, SocketSealer, tunnelOpener, tunnelSealer } from '../../src/datapath/tunnel-keys.js';
import type { UdpDatapath, UdpListener } from '../../src/datapath/udp-datapath.js';
import {
  DatagramSealer, encodeOriginBlock, isTunnelError, type DatagramRejectReason, type Direction, type OpenResult,
} from '../../src/protocol/tunnel/index.js';
import { freePort, sleep, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from '../gateway/expose-helpers.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const KEY2 = Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i));
const ORIGIN4 = encodeOriginBlock({ serviceId: 3, client: { address: '198.51.100.7', port: 40000, family: 4 } });
const ORIGIN6 = encodeOriginBlock({ serviceId: 9, client: { address: '2001:db8::5', port: 53, family: 6 } });
const DIR: Direction = 'gateway-to-agent';

/** Calls of the addon's openOne: datagrams opened one call each instead of in the batch. */
const openOne = { calls: 0 };

function datapath(t: TestContext, gso = true): NativeDatapath {
  if (!loaded.ok) throw new Error('unreachable');
  // The addon's functions are read-only: count openOne through an object that inherits the rest.
  const b = loaded.binding as unknown as SealBinding;
  const counting = Object.create(loaded.binding) as typeof loaded.binding;
  Object.defineProperty(counting, 'openOne', {
    value: (...args: Parameters<SealBinding['openOne']>) => {
      openOne.calls++;
      return b.openOne(...args);
    },
  });
  const dp = new NativeDatapath(counting, loaded.layout, { gso });
  t.after(() => dp.destroy());
  return dp;
}

function countOpenOne(): { readonly calls: number } {
  const from = openOne.calls;
  return { get calls() { return openOne.calls - from; } };
}

async function silentListener(t: TestContext, dp: UdpDatapath): Promise<UdpListener> {
  const l = await dp.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
  t.after(() => l.close());
  return l;
}

async function udpSocket(t: TestContext) {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  const inbox: Buffer[] = [];
  s.on('message', (m) => inbox.push(m));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return { s, inbox, port: s.address().port };
}

/** What an opener made of one datagram, with its payload copied (receive slots are reused). */
type Seen = { ok: true; kind: string; tag: number; sequence: number; newest: boolean; payload: string; origin?: string } | { ok: false; reason: DatagramRejectReason };

function describe(r: OpenResult): Seen {
  if (!r.ok) return { ok: false, reason: r.reason };
  const d = r.datagram;
  if (d.kind !== 'data') return { ok: true, kind: d.kind, tag: 0, sequence: d.sequence, newest: d.newest, payload: String(d.counter) };
  return {
    ok: true, kind: d.kind, tag: d.tag, sequence: d.sequence, newest: d.newest, payload: d.payload.toString(),
    ...(d.origin ? { origin: `${d.origin.serviceId} ${d.origin.client.address}:${d.origin.client.port}` } : {}),
  };
}

/** A native listener whose datagrams go through the opener its key id selects, as the gateway does. */
async function openingListener(t: TestContext, dp: NativeDatapath, openers: Map<number, SocketOpener>, onSeen?: (i: number) => void) {
  const seen: Seen[] = [];
  const listener = await dp.listen('127.0.0.1', 0, {
    onDatagram: (buf) => {
      const opener = openers.get(buf.length >= 6 ? buf.readUInt32BE(2) : -1);
      seen.push(opener ? describe(opener.open(buf)) : { ok: false, reason: 'unknown-key' });
      onSeen?.(seen.length);
    },
    onSendError: () => {},
  });
  t.after(() => listener.close());
  return { listener, seen };
}

test('native batch seal: a batch sealed in C++ is byte for byte what the js sealer makes for the same key, sequence and origin (runs as GSO)', { skip }, async (t) => {
  const dp = datapath(t);
  const sender = await silentListener(t, dp);
  const client = await udpSocket(t);
  const sealer = tunnelSealer(dp, { key: KEY, direction: DIR, peerKeyId: 0x0a0b0c0d }, () => sender);
  assert.ok(sealer instanceof NativeSocketSealer && sealer.slot >= 0, 'native sealer with a key slot');
  const reference = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x0a0b0c0d });
  const sends: [number, Buffer, Buffer | undefined][] = [
    [7, Buffer.from('ping'), ORIGIN4],
    [7, Buffer.alloc(0), undefined],
    [0xffffffff, Buffer.from('six'), ORIGIN6],
  ];
  // A run of equal-sized datagrams to one destination: one GSO send.
  for (let i = 0; i < 40; i++) sends.push([12, Buffer.alloc(1200, i), undefined]);
  sends.push([12, Buffer.alloc(300, 0xee), undefined]);
  const expected: Buffer[] = [];
  for (const [tag, payload, origin] of sends) {
    sealer.sendData(tag, payload, origin, client.port, '127.0.0.1');
    expected.push(reference.sealData(tag, payload, origin));
  }
  // A keepalive sealed in JavaScript between batches takes the next sequence of the same counter.
  await waitFor(() => client.inbox.length === sends.length, `${sends.length} sealed datagrams (got ${client.inbox.length})`);
  (sender as UdpListener).send(sealer.sealKeepalive(5), client.port, '127.0.0.1');
  expected.push(reference.sealKeepalive(5));
  await waitFor(() => client.inbox.length === expected.length, 'the keepalive');
  assert.equal(sealer.nextSequence, expected.length);
  for (let i = 0; i < expected.length; i++) assert.equal(client.inbox[i]!.toString('hex'), expected[i]!.toString('hex'), `datagram ${i}`);
  sealer.release();
  sealer.release();
});

test('native batch seal: the js fallback (js datapath, or a socket the engine does not own) gives the same bytes', { skip }, async (t) => {
  const client = await udpSocket(t);
  const dp = datapath(t);
  const js = await silentListener(t, jsDatapath);
  const onJs = tunnelSealer(jsDatapath, { key: KEY, direction: DIR, peerKeyId: 1 }, () => js);
  assert.ok(!(onJs instanceof NativeSocketSealer) && onJs instanceof SocketSealer);
  assert.ok(!(tunnelOpener(jsDatapath, { key: KEY, direction: DIR, keyId: 1 }) instanceof NativeSocketOpener));
  // A native sealer whose socket is a js one seals in JavaScript.
  const mixed = tunnelSealer(dp, { key: KEY, direction: DIR, peerKeyId: 1 }, () => js);
  onJs.sendData(3, Buffer.from('abc'), ORIGIN4, client.port, '127.0.0.1');
  await waitFor(() => client.inbox.length === 1, 'js datagram');
  mixed.sendData(3, Buffer.from('abc'), ORIGIN4, client.port, '127.0.0.1');
  await waitFor(() => client.inbox.length === 2, 'mixed datagram');
  const reference = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 1 }).sealData(3, Buffer.from('abc'), ORIGIN4);
  assert.equal(client.inbox[0]!.toString('hex'), reference.toString('hex'));
  assert.equal(client.inbox[1]!.toString('hex'), reference.toString('hex'));
  mixed.release();
});

test('native batch seal: bad arguments throw before anything is staged or a sequence is taken; a record without its key is never sent', { skip }, async (t) => {
  const dp = datapath(t);
  const sender = await silentListener(t, dp);
  const client = await udpSocket(t);
  const sealer = tunnelSealer(dp, { key: KEY, direction: DIR, peerKeyId: 1 }, () => sender);
  assert.throws(() => sealer.sendData(0, Buffer.from('x'), undefined, client.port, '127.0.0.1'), (err) => isTunnelError(err, 'bad-value'));
  assert.throws(() => sealer.sendData(1, Buffer.alloc(70_000), undefined, client.port, '127.0.0.1'), (err) => isTunnelError(err, 'bad-value'));
  assert.throws(() => sealer.sendData(1, Buffer.from('x'), Buffer.alloc(5), client.port, '127.0.0.1'), (err) => isTunnelError(err, 'bad-value'));
  // Staged under a slot that holds no sealing key (released, or never made): dropped, not sent in clear.
  const native = sender as unknown as NativeListener;
  const at = native.stageSealed(32 + 9, 4096, client.port, '127.0.0.1');
  dp.staging.write('plaintext', at + 16);
  sealer.sendData(1, Buffer.from('after'), undefined, client.port, '127.0.0.1');
  await waitFor(() => client.inbox.length >= 1, 'the sealed datagram');
  // A marker through the same socket after it: anything staged before has been sent by then.
  sender.send(Buffer.from('marker'), client.port, '127.0.0.1');
  await waitFor(() => client.inbox.some((b) => b.toString() === 'marker'), 'marker');
  assert.equal(client.inbox.length, 2, 'only the sealed datagram and the marker');
  assert.ok(!client.inbox.some((b) => b.includes('plaintext')));
  assert.equal(sealer.nextSequence, 1, 'failed calls took no sequence');
});

test('native batch open: replayed, truncated, reordered, forged and too-old datagrams in one batch are dropped and counted; the others open', { skip }, async (t) => {
  const dp = datapath(t);
  const opener = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0x55, replayWindow: 64 });
  assert.ok(opener instanceof NativeSocketOpener);
  t.after(() => opener.release());
  const { listener, seen } = await openingListener(t, dp, new Map([[0x55, opener]]));
  const client = await udpSocket(t);
  const sealer = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x55 });
  const d = Array.from({ length: 200 }, (_, i) => sealer.sealData(1 + (i % 3), Buffer.from(`d${i}`), i === 0 ? ORIGIN4 : undefined));
  const send = (b: Buffer) => client.s.send(b, listener.local.port, '127.0.0.1');
  // The first datagram binds the key to the socket (opened by one call); then the batch opens the rest.
  const one = countOpenOne();
  send(d[0]!);
  await waitFor(() => seen.length === 1, 'first');
  assert.equal(one.calls, 1);
  const forged = Buffer.from(d[3]!);
  forged[forged.length - 1]! ^= 1;
  const flippedHeader = Buffer.from(d[6]!);
  flippedHeader[15]! ^= 1; // the sequence (6 -> 7): the header is associated data, so the tag fails
  const batch = [
    d[1]!, d[1]!, // replayed
    d[2]!.subarray(0, 20), // truncated below header + tag: malformed
    d[2]!.subarray(0, d[2]!.length - 1), // truncated: the tag fails
    forged, d[3]!, // forged first, then the real one still opens
    d[5]!, d[4]!, // reordered inside the window
    flippedHeader, d[6]!,
    d[150]!, // jumps ahead: the window moves
    d[50]!, // now 100 behind with a window of 64: too old
    d[149]!, d[151]!,
  ];
  for (const b of batch) send(b);
  await waitFor(() => seen.length === 1 + batch.length, `${batch.length} more (got ${seen.length - 1})`);
  assert.equal(one.calls, 1, 'the whole batch was opened in the harvest, not one call each');
  const brief = seen.slice(1).map((s) => (s.ok ? s.payload : s.reason));
  assert.deepEqual(brief, ['d1', 'replayed', 'malformed', 'auth-failed', 'auth-failed', 'd3', 'd5', 'd4', 'auth-failed', 'd6', 'd150', 'too-old', 'd149', 'd151']);
  assert.deepEqual(seen[0], { ok: true, kind: 'data', tag: 1, sequence: 0, newest: true, payload: 'd0', origin: '3 198.51.100.7:40000' });
  const ok = seen.filter((s): s is Extract<Seen, { ok: true }> => s.ok);
  assert.deepEqual(ok.map((s) => [s.sequence, s.newest]), [[0, true], [1, true], [3, true], [5, true], [4, false], [6, true], [150, true], [149, false], [151, true]]);
  assert.equal(opener.authFailures, 3);
  assert.equal(opener.highestSequence, 151);
});

test('native batch open: keepalives, plaintext rules and key ids are those of the js opener', { skip }, async (t) => {
  const dp = datapath(t);
  const opener = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0x66 });
  t.after(() => opener.release());
  const { listener, seen } = await openingListener(t, dp, new Map([[0x66, opener]]));
  const client = await udpSocket(t);
  const sealer = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x66 });
  const wrongDirection = new DatagramSealer({ key: KEY, direction: 'agent-to-gateway', peerKeyId: 0x66 });
  const send = (b: Buffer) => client.s.send(b, listener.local.port, '127.0.0.1');
  send(sealer.sealKeepalive(0xdeadbeef));
  await waitFor(() => seen.length === 1, 'keepalive');
  send(sealer.sealKeepaliveAck(7));
  for (let i = 0; i < 5; i++) wrongDirection.sealKeepalive(i); // past the sequences used above
  send(wrongDirection.sealData(1, Buffer.from('reflected'))); // the nonce's direction differs: the tag fails
  send(sealer.sealData(2, Buffer.from('fine'), ORIGIN6));
  await waitFor(() => seen.length === 4, 'the rest');
  assert.deepEqual(seen.map((s) => (s.ok ? `${s.kind} ${s.payload}${s.origin ? ` ${s.origin}` : ''}` : s.reason)), [
    'keepalive 3735928559', 'keepalive-ack 7', 'auth-failed', 'data fine 9 2001:db8::5:53',
  ]);
});

test('native batch: a key rotation and a reconnect in the middle of a batch', { skip }, async (t) => {
  const dp = datapath(t);
  const client = await udpSocket(t);
  // Sending side: the sealer rotates between two datagrams of one batch (same tick, one flush).
  const sender = await silentListener(t, dp);
  const a = tunnelSealer(dp, { key: KEY, direction: DIR, peerKeyId: 0xa }, () => sender);
  const b = tunnelSealer(dp, { key: KEY2, direction: DIR, peerKeyId: 0xb }, () => sender);
  const refA = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0xa });
  const refB = new DatagramSealer({ key: KEY2, direction: DIR, peerKeyId: 0xb });
  const expected: Buffer[] = [];
  for (let i = 0; i < 3; i++) {
    a.sendData(1, Buffer.from(`a${i}`), undefined, client.port, '127.0.0.1');
    expected.push(refA.sealData(1, Buffer.from(`a${i}`)));
  }
  a.release(); // sends what it staged, then frees its slot
  for (let i = 0; i < 3; i++) {
    b.sendData(1, Buffer.from(`b${i}`), undefined, client.port, '127.0.0.1');
    expected.push(refB.sealData(1, Buffer.from(`b${i}`)));
  }
  // After the release the old sealer still seals, in JavaScript, with the same counter.
  a.sendData(1, Buffer.from('a3'), undefined, client.port, '127.0.0.1');
  expected.push(refA.sealData(1, Buffer.from('a3')));
  await waitFor(() => client.inbox.length === expected.length, `${expected.length} datagrams (got ${client.inbox.length})`);
  assert.deepEqual(client.inbox.map((x) => x.toString('hex')).sort(), expected.map((x) => x.toString('hex')).sort());
  b.release();

  // Receiving side: the old key is forgotten while its datagrams are still in the batch.
  const openers = new Map<number, SocketOpener>();
  const oldKey = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0xa });
  const newKey = tunnelOpener(dp, { key: KEY2, direction: DIR, keyId: 0xb });
  openers.set(0xa, oldKey).set(0xb, newKey);
  t.after(() => newKey.release());
  const { listener, seen } = await openingListener(t, dp, openers, (n) => {
    if (n === 4) {
      openers.delete(0xa);
      oldKey.release();
    }
  });
  const sa = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0xa });
  const sb = new DatagramSealer({ key: KEY2, direction: DIR, peerKeyId: 0xb });
  const send = (x: Buffer) => client.s.send(x, listener.local.port, '127.0.0.1');
  send(sa.sealData(1, Buffer.from('a0')));
  send(sb.sealData(1, Buffer.from('b0')));
  await waitFor(() => seen.length === 2, 'both keys bound');
  const one = countOpenOne();
  for (let i = 1; i <= 4; i++) {
    send(sa.sealData(1, Buffer.from(`a${i}`)));
    send(sb.sealData(1, Buffer.from(`b${i}`)));
  }
  await waitFor(() => seen.length === 10, `the batch (got ${seen.length})`);
  assert.equal(one.calls, 0, 'opened in the harvest');
  assert.deepEqual(seen.slice(2).map((s) => (s.ok ? s.payload : s.reason)), ['a1', 'b1', 'unknown-key', 'b2', 'unknown-key', 'b3', 'unknown-key', 'b4']);
  assert.deepEqual(openers.get(0xa), undefined);
  assert.deepEqual(describe(oldKey.open(sa.sealData(1, Buffer.from('late')))), { ok: false, reason: 'unknown-key' }, 'a released opener refuses everything');
});

test('native batch: an exposure seals and opens its datagrams in the batch at the gateway and the agent, bursts included', { skip }, async (t) => {
  const dp = datapath(t);
  let staged = 0;
  const stageSealed = dp.stageSealed.bind(dp);
  dp.stageSealed = (...args) => {
    staged++;
    return stageSealed(...args);
  };
  const echo = await udpEcho(t);
  const gw = await startGateway(t, gatewayConfig(), undefined, dp);
  const port = await freePort('udp');
  const { agent } = await startAgent(t, agentConfig(gw, `    wg: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port} }`), undefined, dp);
  await published(agent);
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
  const client = await udpClient(t);
  const opened = countOpenOne();
  const n = 300;
  // Bursts of 50: several datagrams per batch in each direction.
  for (let i = 0; i < n; i++) {
    client.send(port, `d${i}`);
    if (i % 50 === 49) await sleep(5);
  }
  const got = new Set<string>();
  while (got.size < n) got.add((await client.next(2000)).toString());
  assert.deepEqual([...got].sort(), Array.from({ length: n }, (_, i) => `d${i}`).sort());
  // Every data datagram of both directions was sealed in the batch: through stageSealed (sealed at
  // flush) or, once the session is established, by the forwarding table in the harvest
  // (datapath/offload.ts); openOne only for the first datagram of each key on its socket (2
  // keys), never per datagram.
  const c = nativeKeys(dp)?.fwd?.counters ?? new Float64Array(0);
  let forwarded = 0;
  for (let i = 0; i < c.length; i += FORWARD_COUNTERS) forwarded += c[i]!;
  assert.ok(staged + forwarded >= 2 * n, `sealed in the batch: ${staged} at flush, ${forwarded} hops forwarded`);
  assert.ok(opened.calls <= 2, `opened one by one: ${opened.calls}`);
  assert.equal(gw.gateway.counters.datagramsToAgentOverTls, 0);
});

test('native batch open: a pinned key (the agent, which takes tunnel datagrams from its gateway only) is not opened from another source', { skip }, async (t) => {
  const dp = datapath(t);
  const opener = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0x77 }, { pinSource: true });
  t.after(() => opener.release());
  const gateway = await udpSocket(t);
  const other = await udpSocket(t);
  const seen: string[] = [];
  const listener = await dp.listen('127.0.0.1', 0, {
    onDatagram: (buf, _address, port) => {
      // As AgentDatagramPath: only the gateway's datagrams go to the opener.
      if (port !== gateway.port) return void seen.push(`foreign ${buf.subarray(16, 18).toString('hex')}`);
      const r = opener.open(buf);
      seen.push(r.ok && r.datagram.kind === 'data' ? r.datagram.payload.toString() : r.ok ? '?' : r.reason);
    },
    onSendError: () => {},
  });
  t.after(() => listener.close());
  const sealer = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x77 });
  gateway.s.send(sealer.sealData(1, Buffer.from('bind')), listener.local.port, '127.0.0.1');
  await waitFor(() => seen.length === 1, 'bound');
  const d1 = sealer.sealData(1, Buffer.from('d1'));
  // A copy of a genuine datagram from elsewhere first: left sealed, the window untouched.
  other.s.send(d1, listener.local.port, '127.0.0.1');
  await waitFor(() => seen.length === 2, 'the copy');
  gateway.s.send(d1, listener.local.port, '127.0.0.1');
  await waitFor(() => seen.length === 3, 'the original');
  assert.deepEqual(seen, ['bind', `foreign ${d1.subarray(16, 18).toString('hex')}`, 'd1']);
});

test("native batch open: a peer's direct-path datagrams behind ICE's data prefix are opened in the batch too", { skip }, async (t) => {
  const dp = datapath(t);
  const opener = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0x88 });
  t.after(() => opener.release());
  const seen: string[] = [];
  const listener = await dp.listen('127.0.0.1', 0, {
    // As the ICE agent: strip the 0x0b prefix and hand on a view (ice/channel.ts).
    onDatagram: (buf) => {
      const r = buf[0] === 0x0b ? opener.open(buf.subarray(1)) : opener.open(buf);
      seen.push(r.ok && r.datagram.kind === 'data' ? r.datagram.payload.toString() : r.ok ? '?' : r.reason);
    },
    onSendError: () => {},
  });
  t.after(() => listener.close());
  const peer = await udpSocket(t);
  const sealer = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x88 });
  const framed = (b: Buffer) => Buffer.concat([Buffer.from([0x0b]), b]);
  peer.s.send(framed(sealer.sealData(1, Buffer.from('p0'))), listener.local.port, '127.0.0.1');
  await waitFor(() => seen.length === 1, 'bound');
  const one = countOpenOne();
  const d1 = sealer.sealData(1, Buffer.from('p1'));
  for (const b of [framed(d1), framed(d1), framed(sealer.sealData(1, Buffer.from('p2')))]) peer.s.send(b, listener.local.port, '127.0.0.1');
  // The same key without the prefix is not this binding's: left to the one-call path.
  peer.s.send(sealer.sealData(1, Buffer.from('p3')), listener.local.port, '127.0.0.1');
  await waitFor(() => seen.length === 5, 'the rest');
  assert.deepEqual(seen, ['p0', 'p1', 'replayed', 'p2', 'p3']);
  assert.equal(one.calls, 1, 'only the unprefixed one was opened by a call of its own');
});

test('native batch open: a key bound to a socket that closed is not opened on the socket that reuses its id', { skip }, async (t) => {
  const dp = datapath(t);
  const opener = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0x99 });
  t.after(() => opener.release());
  const seen: string[] = [];
  const first = await dp.listen('127.0.0.1', 0, { onDatagram: (buf) => void seen.push(describe(opener.open(buf)).ok ? 'opened' : 'refused'), onSendError: () => {} });
  const client = await udpSocket(t);
  const sealer = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x99 });
  client.s.send(sealer.sealData(1, Buffer.from('bind')), first.local.port, '127.0.0.1');
  await waitFor(() => seen.length === 1, 'bound');
  await first.close();
  // The next socket takes the freed id; a genuine datagram sent to it must arrive as it was sent.
  const got: Buffer[] = [];
  const second = await dp.listen('127.0.0.1', 0, { onDatagram: (buf) => void got.push(Buffer.from(buf)), onSendError: () => {} });
  t.after(() => second.close());
  const d = sealer.sealData(1, Buffer.from('secret'));
  client.s.send(d, second.local.port, '127.0.0.1');
  await waitFor(() => got.length === 1, 'datagram on the new socket');
  assert.equal(got[0]!.toString('hex'), d.toString('hex'), 'still sealed');
});

test('native batch open: with a drop counter, replays and forgeries are dropped in the harvest and counted once per batch; the rest reach JavaScript in order', { skip }, async (t) => {
  const dp = datapath(t);
  const counted: Partial<Record<DatagramRejectReason, number>> = {};
  let calls = 0;
  const opener = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0xaa, replayWindow: 64 }, {
    onDropped: (reason, n) => {
      calls++;
      counted[reason] = (counted[reason] ?? 0) + n;
    },
  });
  const { listener, seen } = await openingListener(t, dp, new Map([[0xaa, opener]]));
  const client = await udpSocket(t);
  const sealer = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0xaa });
  const d = Array.from({ length: 200 }, (_, i) => sealer.sealData(1, Buffer.from(`d${i}`)));
  const send = (b: Buffer) => client.s.send(b, listener.local.port, '127.0.0.1');
  send(d[0]!);
  await waitFor(() => seen.length === 1, 'bound');
  const forged = Buffer.from(d[2]!);
  forged[20]! ^= 1;
  const batch = [d[1]!, d[1]!, forged, d[2]!, d[1]!, d[150]!, d[50]!, d[3]!.subarray(0, 20), d[151]!];
  for (const b of batch) send(b);
  await waitFor(() => seen.length === 6, `what reaches JavaScript (got ${seen.length})`);
  // Wait for the last datagram: every drop before it has been folded by then.
  assert.deepEqual(seen.slice(1).map((s) => (s.ok ? s.payload : s.reason)), ['d1', 'd2', 'd150', 'malformed', 'd151']);
  assert.deepEqual(counted, { replayed: 2, 'auth-failed': 1, 'too-old': 1 });
  assert.ok(calls <= 3 * 2, `folded per batch and reason, not per datagram (${calls} calls)`);
  assert.equal(opener.authFailures, 1);
  // Drops counted since the last batch are handed over on release too.
  send(d[151]!);
  await waitFor(() => counted.replayed === 3, 'the replay after');
  opener.release();
});
