import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import { systemClock } from '../../src/core/clock.js';
import type { Endpoint } from '../../src/core/address.js';
import { isSluiceError } from '../../src/core/errors.js';
import { dgramSender } from '../../src/gateway/demux.js';
import { TurnClient, type TurnServerConfig } from '../../src/turn/turn-client.js';
import { TurnError } from '../../src/turn/turn-error.js';
import { StunMethod, decodeStunDatagram } from '../../src/protocol/stun/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { TURN_PASSWORD, TURN_USER, haveCoturn, startCoturn, type Coturn } from './coturn.js';
import { udpSocket, until } from './udp.js';

/**
 * The TURN client against a real coturn on 127.0.0.1: every step of RFC 8656 a client takes,
 * checked on the wire. coturn needs --allow-loopback-peers because every peer here is loopback.
 */

interface Wire {
  /** STUN messages the client's socket received from the server, as "method/class". */
  readonly fromServer: string[];
  /** First bytes of datagrams the client's socket sent. */
  readonly sentFirstBytes: number[];
}

async function client(t: TestContext, coturn: Coturn, over: Partial<TurnServerConfig> = {}, clock = systemClock) {
  let turn: TurnClient | undefined;
  // Bounded in real time: on a ManualClock a close whose answer never comes would wait forever.
  const { socket, local } = await udpSocket(t, () => Promise.race([turn?.close(), new Promise((r) => setTimeout(r, 1000))]));
  const wire: Wire = { fromServer: [], sentFirstBytes: [] };
  const send = dgramSender(socket);
  turn = new TurnClient(
    { server: { address: coturn.address, port: coturn.port }, username: TURN_USER, password: TURN_PASSWORD, ...over },
    { clock, send: (buf, port, address) => (wire.sentFirstBytes.push(buf[0]!), send(buf, port, address)), timing: { rtoMs: 200 } },
  );
  const got: { data: string; from: Endpoint }[] = [];
  const closedWith: (Error | undefined)[] = [];
  turn.setReceiver({ onRelayDatagram: (buf, from) => got.push({ data: buf.toString(), from }), onRelayClosed: (e) => closedWith.push(e) });
  socket.on('message', (buf, r) => {
    try {
      const m = buf[0]! <= 3 ? decodeStunDatagram(buf) : undefined;
      if (m) wire.fromServer.push(`${m.method}/${m.cls}`);
    } catch {
      /* counted by nobody; the client drops it too */
    }
    turn!.handleDatagram(buf, { address: r.address, port: r.port });
  });
  return { turn, socket, local, wire, got, closedWith };
}

async function peer(t: TestContext) {
  const { socket, local } = await udpSocket(t);
  const got: { data: string; from: Endpoint }[] = [];
  socket.on('message', (buf, r) => got.push({ data: buf.toString(), from: { address: r.address, port: r.port, family: 4 } }));
  return { socket, local, got };
}

const sendTo = (s: dgram.Socket, data: string, to: Endpoint) => s.send(Buffer.from(data), to.port, to.address);

test('Allocate: 401 first, then a signed retry; relayed and mapped addresses come back', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const c = await client(t, coturn);
  const alloc = await c.turn.allocate();
  assert.equal(c.turn.state, 'allocated');
  assert.equal(alloc.relayed.address, '127.0.0.1');
  assert.notEqual(alloc.relayed.port, coturn.port);
  assert.deepEqual(alloc.mapped, c.local);
  assert.deepEqual(c.wire.fromServer.slice(0, 2), [`${StunMethod.Allocate}/error`, `${StunMethod.Allocate}/success`]);
  assert.equal(await c.turn.allocate(), alloc, 'allocate() is idempotent');
});

test('Allocate with a wrong password fails with TurnError 401', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const c = await client(t, coturn, { password: 'nope' });
  const err = await c.turn.allocate().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof TurnError, String(err));
  assert.ok(isSluiceError(err, 'SLUICE_ERR_TURN'));
  assert.equal(err.status, 401);
  assert.equal(c.turn.state, 'failed');
});

test('CreatePermission then Send and Data indications both ways (channels off)', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const c = await client(t, coturn, { channels: false });
  const p = await peer(t);
  const { relayed } = await c.turn.allocate();
  for (let i = 0; i < 5; i++) c.turn.send(Buffer.from(`to-peer-${i}`), p.local); // queued until the permission is in
  await until(() => p.got.length === 5, 'peer to get 5 datagrams');
  assert.deepEqual(p.got.map((g) => g.data), [0, 1, 2, 3, 4].map((i) => `to-peer-${i}`));
  assert.ok(p.got.every((g) => g.from.port === relayed.port), 'datagrams come from the relayed address');
  for (let i = 0; i < 5; i++) sendTo(p.socket, `to-client-${i}`, relayed);
  await until(() => c.got.length === 5, 'client to get 5 datagrams');
  assert.deepEqual(c.got.map((g) => g.data), [0, 1, 2, 3, 4].map((i) => `to-client-${i}`));
  assert.deepEqual(c.got[0]!.from, p.local);
  assert.equal(c.turn.counters.indicationsSent, 5);
  assert.equal(c.turn.counters.channelDataSent, 0);
  assert.ok(c.wire.fromServer.includes(`${StunMethod.CreatePermission}/success`));
  assert.ok(c.wire.fromServer.includes(`${StunMethod.Data}/indication`));
});

test('without a permission the server drops what a peer sends', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const c = await client(t, coturn);
  const p = await peer(t);
  const { relayed } = await c.turn.allocate();
  sendTo(p.socket, 'unasked', relayed);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(c.got.length, 0);
});

test('ChannelBind, then ChannelData both ways', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const c = await client(t, coturn);
  const p = await peer(t);
  const { relayed } = await c.turn.allocate();
  const channel = await c.turn.bindChannel(p.local);
  assert.equal(channel, 0x4000);
  assert.equal(await c.turn.bindChannel(p.local), channel, 'one channel per peer');
  for (let i = 0; i < 10; i++) c.turn.send(Buffer.from(`cd-${i}`), p.local);
  await until(() => p.got.length === 10, 'peer to get 10 datagrams');
  assert.equal(c.turn.counters.channelDataSent, 10);
  assert.equal(c.wire.sentFirstBytes.filter((b) => b === 0x40).length, 10);
  const before = c.wire.fromServer.length;
  for (let i = 0; i < 10; i++) sendTo(p.socket, `back-${i}`, relayed);
  await until(() => c.got.length === 10, 'client to get 10 datagrams');
  assert.equal(c.wire.fromServer.length, before, 'peer data came as ChannelData, not as Data indications');
  assert.deepEqual(c.got.map((g) => g.data), [...Array(10).keys()].map((i) => `back-${i}`));
});

test('channels are bound on demand: the first datagrams go as indications, later ones as ChannelData', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const c = await client(t, coturn);
  const p = await peer(t);
  await c.turn.allocate();
  c.turn.send(Buffer.from('first'), p.local);
  await until(() => p.got.length === 1, 'first datagram');
  await until(() => c.wire.fromServer.includes(`${StunMethod.ChannelBind}/success`), 'the channel');
  c.turn.send(Buffer.from('second'), p.local);
  await until(() => p.got.length === 2, 'second datagram');
  assert.equal(c.turn.counters.indicationsSent, 1);
  assert.equal(c.turn.counters.channelDataSent, 1);
});

test('Refresh before expiry, permissions and channels refreshed, on the injected clock', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const clock = new ManualClock();
  const c = await client(t, coturn, {}, clock);
  const p = await peer(t);
  // Retransmission timers never fire on a clock that only moves by hand; coturn answers the first transmission.
  await c.turn.allocate();
  const count = (m: number) => c.wire.fromServer.filter((x) => x === `${m}/success`).length;
  c.turn.send(Buffer.from('x'), p.local);
  await until(() => count(StunMethod.CreatePermission) === 1 && count(StunMethod.ChannelBind) === 1, 'permission and channel');
  clock.advance(239_999);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(count(StunMethod.CreatePermission), 1);
  clock.advance(1); // 240 s: permissions refreshed (they last 300 s)
  await until(() => count(StunMethod.CreatePermission) >= 2, 'permission refresh');
  clock.advance(299_999); // 539.999 s (another permission refresh at 480 s)
  await until(() => count(StunMethod.CreatePermission) >= 3, 'second permission refresh');
  assert.equal(count(StunMethod.Refresh), 0);
  clock.advance(1); // 540 s = lifetime 600 - 60: allocation refreshed, channel re-bound
  await until(() => count(StunMethod.Refresh) === 1, 'Refresh success');
  await until(() => count(StunMethod.ChannelBind) === 2, 'channel re-bound at 540 s');
  // The retransmissions of the 480 s refresh ran ahead of coturn's answer on the hand-moved clock;
  // the permission stays installed all the same.
  assert.equal(c.turn.state, 'allocated');
  c.turn.send(Buffer.from('still here'), p.local);
  await until(() => p.got.length === 2, 'data after the refreshes');
});

test('438 Stale Nonce: the client retries with the new nonce', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t, ['--stale-nonce=1']);
  const c = await client(t, coturn);
  const p = await peer(t);
  await c.turn.allocate();
  await new Promise((r) => setTimeout(r, 2100));
  await c.turn.createPermission([p.local]);
  const seen = c.wire.fromServer;
  const i = seen.indexOf(`${StunMethod.CreatePermission}/error`);
  assert.ok(i >= 0, `expected a 438 for CreatePermission, saw ${seen.join(' ')}`);
  assert.equal(seen[i + 1], `${StunMethod.CreatePermission}/success`);
});

test('close() deletes the allocation: the same 5-tuple can allocate again', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'TURN client vs coturn')) return;
  const coturn = await startCoturn(t);
  const c = await client(t, coturn);
  const another = () => {
    const turn = new TurnClient(
      { server: { address: coturn.address, port: coturn.port }, username: TURN_USER, password: TURN_PASSWORD },
      { clock: systemClock, send: dgramSender(c.socket), timing: { rtoMs: 200 } },
    );
    c.socket.on('message', (buf, r) => turn.handleDatagram(buf, { address: r.address, port: r.port }));
    return turn;
  };
  await c.turn.allocate();
  // Control: while the allocation lives, the same 5-tuple gets 437 Allocation Mismatch.
  const mismatch = await another().allocate().then(() => undefined, (e: unknown) => e);
  assert.ok(mismatch instanceof TurnError && mismatch.status === 437, String(mismatch));
  await c.turn.close();
  assert.equal(c.turn.state, 'closed');
  assert.ok(c.wire.fromServer.includes(`${StunMethod.Refresh}/success`), 'Refresh(0) was answered');
  assert.deepEqual(c.closedWith, [undefined]);
  await c.turn.close(); // idempotent
  // coturn keeps a deleted allocation about a second before the 5-tuple is free (protocols.md 4.1 step 8).
  const end = Date.now() + 10_000;
  for (;;) {
    const again = another();
    const r = await again.allocate().then((a) => a, (e: unknown) => e);
    if (!(r instanceof Error)) {
      await again.close();
      break;
    }
    assert.ok(r instanceof TurnError && r.status === 437, String(r));
    assert.ok(Date.now() < end, 'the 5-tuple was still allocated 10 s after close()');
    await new Promise((res) => setTimeout(res, 250));
  }
});
