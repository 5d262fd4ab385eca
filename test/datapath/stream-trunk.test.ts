import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { PairEnd } from '../../src/datapath/stream-datapath.js';
import { TRUNK_WINDOW_BYTES } from '../../src/datapath/stream-trunk.js';
import { acceptedConn, nativeDp, peerEnd, seal, skip, RecordReader } from './sealed-harness.js';
import { acceptMany, openStreams, readAll, trunkEnds, until } from './trunk-harness.js';
import { GOLDEN_TRUNK } from '../protocol/tunnel/trunk-golden.js';

// The trunk in the native stream engine (native/src/stream-trunk.h, docs/tunnel-protocol.md
// "Trunks"): many streams on one sealed connection, credit per stream, ends and resets, over real
// loopback sockets.

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const IV = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');
const TRUNK = 6;

test('trunk: golden frames out, frames in, END for a FIN and a FIN for an END', { skip }, async (t) => {
  const dp = nativeDp();
  const trunk = await acceptedConn(t, '127.0.0.1');
  const client = await acceptedConn(t, '127.0.0.1');
  const open = { key: Buffer.alloc(16, 0x42), iv: Buffer.alloc(12, 0x24), seq: 0n };
  const keys = { sealKey: KEY, sealIv: IV, sealSeq: 0, openKey: open.key, openIv: open.iv, openSeq: 0 };
  const tr = dp.trunk(trunk.conn, keys, () => {});
  assert.ok(tr);
  t.after(() => tr.close());
  assert.ok(tr.expect(7));
  assert.ok(!tr.expect(7), 'a stream id is expected once');
  let ended!: (e: PairEnd) => void;
  const end = new Promise<PairEnd>((r) => (ended = r));
  assert.ok(tr.attach(7, client.conn, 0, true, ended));
  const raw: Buffer[] = [];
  trunk.peer.on('data', (c: Buffer) => raw.push(c));
  client.peer.write('hi');
  await until(() => Buffer.concat(raw).length >= GOLDEN_TRUNK.dataHi.length / 2, 'the first record');
  assert.equal(Buffer.concat(raw).toString('hex'), GOLDEN_TRUNK.dataHi, 'the engine seals what the wire format says');

  const got = readAll(client.peer);
  trunk.peer.write(seal(open, TRUNK, Buffer.concat([Buffer.from('0000000701', 'hex'), Buffer.from('yo')])));
  trunk.peer.write(seal(open, TRUNK, Buffer.from('0000000702', 'hex')));
  assert.equal((await got).toString(), 'yo', 'DATA then END: the bytes, then a FIN');
  client.peer.end();
  await until(() => Buffer.concat(raw).length >= (GOLDEN_TRUNK.dataHi.length + GOLDEN_TRUNK.end.length) / 2, 'the END record');
  assert.equal(Buffer.concat(raw).toString('hex'), GOLDEN_TRUNK.dataHi + GOLDEN_TRUNK.end);
  const e = await end;
  assert.equal(e.reason, 'upstream-closed');
  assert.equal(e.bytesFromClient, 2);
  assert.equal(e.bytesToClient, 2);
  assert.equal(tr.stats()?.streams, 0, 'an ended stream is forgotten');
});

for (const host of ['127.0.0.1', '::1']) {
  test(`trunk [${host}]: 40 streams at once, byte-exact both ways, half-closes both ways`, { skip }, async (t) => {
    const ends = await trunkEnds(t, host);
    const streams = await openStreams(t, host, ends, 40);
    const checks = streams.map(async (s, i) => {
      const up = randomBytes(1000 + i * 5000);
      const down = randomBytes(200_000 - i * 3000);
      const atService = readAll(s.service);
      const atClient = readAll(s.client);
      s.client.end(up); // the client's FIN first: the service still sends after it
      assert.deepEqual(await atService, up);
      s.service.end(down);
      assert.deepEqual(await atClient, down);
      const [g, a] = await Promise.all([s.gwEnd, s.agentEnd]);
      assert.equal(g.reason, 'client-closed');
      assert.equal(a.reason, 'upstream-closed');
      assert.deepEqual([g.bytesFromClient, g.bytesToClient], [up.length, down.length]);
      assert.deepEqual([a.bytesFromClient, a.bytesToClient], [down.length, up.length]);
    });
    await Promise.all(checks);
    assert.equal(ends.gw.stats()?.streams, 0);
    assert.equal(ends.agent.stats()?.streams, 0);
  });
}

test('trunk: 300 small DATA frames and a largest one (65531 bytes) of two streams, interleaved in one trunk write, reach each plain side byte-exact and in order, before its FIN', { skip }, async (t) => {
  const dp = nativeDp();
  const trunk = await acceptedConn(t, '127.0.0.1');
  const [a, b] = await acceptMany(t, '127.0.0.1', 2);
  const open = { key: Buffer.alloc(16, 0x42), iv: Buffer.alloc(12, 0x24), seq: 0n };
  const tr = dp.trunk(trunk.conn, { sealKey: KEY, sealIv: IV, sealSeq: 0, openKey: open.key, openIv: open.iv, openSeq: 0 }, () => {});
  assert.ok(tr);
  t.after(() => tr.close());
  const ended: Promise<PairEnd>[] = [];
  for (const [sid, c] of [[7, a!], [9, b!]] as const) {
    let done!: (e: PairEnd) => void;
    ended.push(new Promise<PairEnd>((r) => (done = r)));
    assert.ok(tr.expect(sid));
    assert.ok(tr.attach(sid, c.conn, 0, true, done));
  }
  const frame = (sid: number, kind: number, body = Buffer.alloc(0)) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(sid);
    head[4] = kind;
    return seal(open, TRUNK, Buffer.concat([head, body]));
  };
  // 300 small frames for stream 7, every third followed by one for
  // stream 9, then a largest DATA frame for 9, then both ENDs: one write, within one window each.
  const toA: Buffer[] = [];
  const toB: Buffer[] = [];
  const wire: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const piece = randomBytes(1 + ((i * 37) % 700));
    toA.push(piece);
    wire.push(frame(7, 1, piece));
    if (i % 3 === 0) {
      const other = randomBytes(1 + ((i * 11) % 300));
      toB.push(other);
      wire.push(frame(9, 1, other));
    }
  }
  const largest = randomBytes(65_531);
  toB.push(largest);
  wire.push(frame(9, 1, largest), frame(7, 2), frame(9, 2));
  const atA = readAll(a!.peer);
  const atB = readAll(b!.peer);
  trunk.peer.write(Buffer.concat(wire));
  assert.deepEqual(await atA, Buffer.concat(toA), 'stream 7: every byte in order, then the FIN');
  assert.deepEqual(await atB, Buffer.concat(toB), 'stream 9: every byte in order, then the FIN');
  a!.peer.end();
  b!.peer.end();
  const [ea, eb] = await Promise.all(ended);
  assert.equal(ea!.bytesToClient, Buffer.concat(toA).length);
  assert.equal(eb!.bytesToClient, Buffer.concat(toB).length);
  assert.equal(tr.stats()?.streams, 0);
});

test('trunk: a reader stalled 2 s on a large transfer stalls only its own stream, and the engine buffers at most a window', { skip }, async (t) => {
  const ends = await trunkEnds(t, '127.0.0.1');
  const [bulk, echo] = await openStreams(t, '127.0.0.1', ends, 2);
  const payload = randomBytes(16 * 1024 * 1024);
  bulk!.client.pause();
  const received: Buffer[] = [];
  bulk!.client.on('data', (c: Buffer) => received.push(c));
  bulk!.client.pause();
  bulk!.service.end(payload);
  // The echo stream keeps working while the bulk one is stalled.
  echo!.service.on('data', (c: Buffer) => echo!.service.write(c));
  const stalledUntil = Date.now() + 2000;
  let trips = 0;
  let maxReceived = 0;
  let maxQueued = 0;
  while (Date.now() < stalledUntil) {
    const reply = new Promise<Buffer>((r) => echo!.client.once('data', r));
    echo!.client.write(`ping ${trips}`);
    assert.equal((await reply).toString(), `ping ${trips}`);
    trips++;
    maxReceived = Math.max(maxReceived, ends.gw.stats()!.received);
    maxQueued = Math.max(maxQueued, ends.agent.stats()!.queued);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(trips >= 20, `the echo stream answered ${trips} times in 2 s`);
  assert.equal(received.length, 0, 'the stalled reader read nothing');
  assert.ok(maxReceived <= TRUNK_WINDOW_BYTES, `the gateway holds at most one window for the stalled stream (${maxReceived})`);
  assert.ok(maxQueued <= 320 * 1024, `the agent's trunk output stays bounded (${maxQueued})`);
  const all = readAll(bulk!.client);
  bulk!.client.resume();
  assert.deepEqual(await all, payload, 'every byte once the reader resumed');
});

test('trunk: a reset from either side resets the other plain side; the trunk carries on', { skip }, async (t) => {
  const ends = await trunkEnds(t, '127.0.0.1');
  const [a, b, c] = await openStreams(t, '127.0.0.1', ends, 3);
  // The public client resets: the service sees a reset.
  const serviceSaw = peerEnd(a!.service);
  a!.service.resume();
  a!.client.write('x');
  await until(() => a!.service.bytesRead === 1, 'the byte before the reset');
  a!.client.resetAndDestroy();
  assert.equal(await serviceSaw, 'reset');
  assert.equal((await a!.gwEnd).reason, 'client-error');
  const ae = await a!.agentEnd;
  assert.equal(ae.reason, 'upstream-error');
  assert.equal(ae.code, 'ECONNRESET');
  // The service resets: the client sees a reset.
  const clientSaw = peerEnd(b!.client);
  b!.client.resume();
  b!.service.resetAndDestroy();
  assert.equal(await clientSaw, 'reset');
  assert.equal((await b!.gwEnd).reason, 'upstream-error');
  // Stopped by the caller (the control channel's STREAM_RESET): the far plain side is reset.
  const stoppedSaw = peerEnd(c!.service);
  c!.service.resume();
  c!.stopGw();
  assert.equal(await stoppedSaw, 'reset');
  // A new stream on the same trunk still works.
  const [d] = await openStreams(t, '127.0.0.1', ends, 1, 10);
  const atService = readAll(d!.service);
  d!.client.end('after');
  assert.equal((await atService).toString(), 'after');
});

test('trunk: killed mid-stream ends its streams with an error; an attach to a dead trunk leaves the client unread for the fallback', { skip }, async (t) => {
  const ends = await trunkEnds(t, '127.0.0.1');
  const [s] = await openStreams(t, '127.0.0.1', ends, 1);
  s!.service.resume();
  s!.client.write(randomBytes(100_000));
  await until(() => s!.service.bytesRead === 100_000, 'the bytes before the kill');
  const clientSaw = peerEnd(s!.client);
  s!.client.resume();
  ends.agent.close(); // the agent's end goes away (a crash, a reset on the path)
  const g = await s!.gwEnd;
  assert.equal(g.reason, 'upstream-error');
  assert.match(g.code ?? '', /ESEALED_TRUNCATED|ECONNRESET/);
  assert.equal(await clientSaw, 'reset');
  assert.match(await ends.gwEnded, /ESEALED_TRUNCATED|ECONNRESET/);
  assert.ok(ends.gw.dead);

  // A client whose bytes wait in its socket: the dead trunk refuses it, nothing is read.
  const [late] = await acceptMany(t, '127.0.0.1', 1);
  late!.peer.write('first bytes');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(ends.gw.expect(99), false);
  assert.equal(ends.gw.attach(99, late!.conn, 0, false, () => {}), undefined);
  // ... so a new trunk (the agent dialed one) takes the same client, and its first bytes arrive.
  const fresh = await trunkEnds(t, '127.0.0.1');
  const [svc] = await acceptMany(t, '127.0.0.1', 1);
  assert.ok(fresh.gw.expect(99));
  assert.ok(fresh.agent.attach(99, svc!.conn, 0, false, () => {}));
  assert.ok(fresh.gw.attach(99, late!.conn, 0, true, () => {}));
  const atService = readAll(svc!.peer);
  late!.peer.end(' and the rest');
  assert.equal((await atService).toString(), 'first bytes and the rest');
});

test('trunk: a RESET for a stream only expected forgets it; a forged record fails the trunk', { skip }, async (t) => {
  const dp = nativeDp();
  const trunk = await acceptedConn(t, '127.0.0.1');
  const open = { key: Buffer.alloc(16, 0x42), iv: Buffer.alloc(12, 0x24), seq: 0n };
  let ended!: (c: string) => void;
  const end = new Promise<string>((r) => (ended = r));
  const tr = dp.trunk(trunk.conn, { sealKey: KEY, sealIv: IV, sealSeq: 0, openKey: open.key, openIv: open.iv, openSeq: 0 }, ended);
  assert.ok(tr);
  t.after(() => tr.close());
  const reader = new RecordReader({ key: KEY, iv: IV, seq: 0n });
  trunk.peer.on('data', (c: Buffer) => reader.push(c));
  assert.ok(tr.expect(3));
  trunk.peer.write(seal(open, TRUNK, Buffer.from('0000000303', 'hex')));
  await until(() => tr.stats()?.streams === 0, 'the reset stream forgotten');
  const [late] = await acceptMany(t, '127.0.0.1', 1);
  assert.equal(tr.attach(3, late!.conn, 0, true, () => {}), undefined, 'a reset stream cannot be attached');
  // drop: RESET goes out for a stream this end gives up.
  assert.ok(tr.expect(4));
  tr.drop(4);
  await until(() => reader.records.length === 1, 'the RESET record');
  assert.deepEqual([reader.records[0]!.type, reader.records[0]!.plain.toString('hex')], [TRUNK, '0000000403']);
  const forged = seal(open, TRUNK, Buffer.from('0000000502', 'hex'));
  forged[forged.length - 1]! ^= 1;
  trunk.peer.write(forged);
  assert.equal(await end, 'ESEALED_AUTH');
  assert.ok(tr.dead);
});

test('trunk: a stream idle past its timeout ends idle-timeout at that end and resets the far plain side', { skip }, async (t) => {
  const ends = await trunkEnds(t, '127.0.0.1');
  const [c] = await acceptMany(t, '127.0.0.1', 1);
  const [s] = await acceptMany(t, '127.0.0.1', 1);
  let gwEnd!: (e: PairEnd) => void;
  const gwEnded = new Promise<PairEnd>((r) => (gwEnd = r));
  assert.ok(ends.gw.expect(5));
  assert.ok(ends.agent.attach(5, s!.conn, 0, false, () => {}));
  assert.ok(ends.gw.attach(5, c!.conn, 300, true, gwEnd));
  const serviceSaw = peerEnd(s!.peer);
  s!.peer.resume();
  c!.peer.resume();
  c!.peer.write('a');
  const e = await gwEnded;
  assert.equal(e.reason, 'idle-timeout');
  assert.equal(e.bytesFromClient, 1);
  assert.equal(await serviceSaw, 'reset', 'the far side hears RESET');
});

test('trunk: a far end that stops reading the trunk leaves the plain sides unread: the engine queues at most its output cap', { skip }, async (t) => {
  const dp = nativeDp();
  const trunk = await acceptedConn(t, '127.0.0.1');
  trunk.peer.pause(); // the far end reads nothing: the trunk's socket buffers fill, then the engine's output
  const tr = dp.trunk(trunk.conn, { sealKey: KEY, sealIv: IV, sealSeq: 0, openKey: KEY, openIv: IV, openSeq: 0 }, () => {});
  assert.ok(tr);
  t.after(() => tr.close());
  // 64 streams x one 256 KiB window each: more than loopback's socket buffers take.
  const clients = await acceptMany(t, '127.0.0.1', 64);
  const chunk = randomBytes(512 * 1024);
  clients.forEach((c, i) => {
    assert.ok(tr.expect(i + 1));
    assert.ok(tr.attach(i + 1, c.conn, 0, true, () => {}));
    c.peer.write(chunk);
  });
  let maxQueued = 0;
  const until2s = Date.now() + 1500;
  while (Date.now() < until2s) {
    maxQueued = Math.max(maxQueued, tr.stats()!.queued);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(maxQueued > 0, 'the output filled');
  // The engine reads a plain side only below its output cap (256 KiB), one frame (48 KiB of body,
  // 4 + 5 + 16 bytes of record) at a time.
  const oneFrame = 48 * 1024 + 4 + 5 + 16;
  assert.ok(maxQueued <= 256 * 1024 + oneFrame, `64 streams x 512 KiB, yet at most the output cap and one frame queued (${maxQueued})`);
});

test('trunk: KEY_UPDATE both ways at the sealer limits, streams byte-exact across the rekeys', { skip }, async (t) => {
  const dp = nativeDp();
  dp.setSealedLimits(5, 2 ** 36); // a KEY_UPDATE every few records, in both directions of the trunk
  t.after(() => dp.setSealedLimits(2 ** 24, 2 ** 36));
  const ends = await trunkEnds(t, '127.0.0.1');
  const streams = await openStreams(t, '127.0.0.1', ends, 4);
  await Promise.all(
    streams.map(async (s) => {
      const up = randomBytes(300_000);
      const down = randomBytes(500_000);
      const atService = readAll(s.service);
      const atClient = readAll(s.client);
      s.client.end(up);
      s.service.end(down);
      assert.deepEqual(await atService, up);
      assert.deepEqual(await atClient, down);
    }),
  );
  assert.equal(ends.gw.dead || ends.agent.dead, false, 'no record failed across the key updates');
});

test('trunk: a new stream\'s attach sends READY first (golden); the expecting end reports it once, false when the trunk ends first, a second READY fails the trunk', { skip }, async (t) => {
  const dp = nativeDp();
  // The agent's end: READY for stream 7 is its first record, before the service's bytes.
  const agentSide = await acceptedConn(t, '127.0.0.1');
  const service = await acceptedConn(t, '127.0.0.1');
  const at = dp.trunk(agentSide.conn, { sealKey: KEY, sealIv: IV, sealSeq: 0, openKey: Buffer.alloc(16, 1), openIv: Buffer.alloc(12, 2), openSeq: 0 }, () => {});
  assert.ok(at);
  t.after(() => at.close());
  const raw: Buffer[] = [];
  agentSide.peer.on('data', (c: Buffer) => raw.push(c));
  assert.ok(at.attach(7, service.conn, 0, false, () => {}));
  await until(() => Buffer.concat(raw).length >= GOLDEN_TRUNK.ready0.length / 2, 'the READY record');
  assert.equal(Buffer.concat(raw).toString('hex'), GOLDEN_TRUNK.ready0, 'READY for stream 7 at sequence 0, nothing before it');
  assert.equal(at.stats()?.frames, 1, 'one frame sealed');

  // The gateway's end: expect with onReady; READY for 7 reports true once; 8 never gets one.
  const gwSide = await acceptedConn(t, '127.0.0.1');
  const open = { key: Buffer.alloc(16, 0x42), iv: Buffer.alloc(12, 0x24), seq: 0n };
  let ended!: (c: string) => void;
  const end = new Promise<string>((r) => (ended = r));
  const gt = dp.trunk(gwSide.conn, { sealKey: KEY, sealIv: IV, sealSeq: 0, openKey: open.key, openIv: open.iv, openSeq: 0 }, ended);
  assert.ok(gt);
  t.after(() => gt.close());
  const readied: string[] = [];
  assert.ok(gt.expect(7, (alive) => readied.push(`7:${alive}`)));
  assert.ok(gt.expect(8, (alive) => readied.push(`8:${alive}`)));
  gwSide.peer.write(seal(open, TRUNK, Buffer.from('0000000705', 'hex')));
  await until(() => readied.length === 1, 'READY for 7 reported');
  assert.deepEqual(readied, ['7:true']);
  assert.equal(gt.stats()?.frames, 1, 'one frame opened');
  // A READY for a stream id never expected is dropped; a second one for 7 is a format error.
  gwSide.peer.write(seal(open, TRUNK, Buffer.from('0000006305', 'hex')));
  gwSide.peer.write(seal(open, TRUNK, Buffer.from('0000000705', 'hex')));
  assert.equal(await end, 'ESEALED_FORMAT');
  assert.deepEqual(readied, ['7:true', '8:false'], 'the trunk ended before 8\'s READY: reported false');

  // A trunk closed here reports false to what still waits.
  const third = await acceptedConn(t, '127.0.0.1');
  const tt = dp.trunk(third.conn, { sealKey: KEY, sealIv: IV, sealSeq: 0, openKey: open.key, openIv: open.iv, openSeq: 0 }, () => {});
  assert.ok(tt);
  let waited: boolean | undefined;
  assert.ok(tt.expect(1, (alive) => (waited = alive)));
  tt.close();
  assert.equal(waited, false);
});
