import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { PairEnd } from '../../src/datapath/stream-datapath.js';
import { TRUNK_FRAME_BYTES, TRUNK_WINDOW_BYTES } from '../../src/datapath/stream-trunk.js';
import { acceptedConn, nativeDp, seal, skip, KEY_UPDATE, RecordReader, type DirKey } from './sealed-harness.js';
import { until } from './trunk-harness.js';

// How the trunk's engine end reads a plain side (native/src/stream-trunk.cc, ReadPlain): one read
// per DATA frame of at most TRUNK_FRAME_BYTES, never more than the stream's credit, a KEY_UPDATE
// between frames at the sealer's limits. Checked on the sealed bytes a raw far end opens with
// node:crypto.

const TRUNK = 6;
const FRAME_MAX = TRUNK_FRAME_BYTES;
const SID = 7;

interface Frame {
  sid: number;
  kind: number;
  body: Buffer;
}

async function rawTrunk(t: TestContext) {
  const dp = nativeDp();
  const trunk = await acceptedConn(t, '127.0.0.1');
  const client = await acceptedConn(t, '127.0.0.1');
  const reads: DirKey = { key: Buffer.alloc(16, 0x11), iv: Buffer.alloc(12, 0x22), seq: 0n };
  const writes: DirKey = { key: Buffer.alloc(16, 0x42), iv: Buffer.alloc(12, 0x24), seq: 0n };
  const tr = dp.trunk(trunk.conn, { sealKey: reads.key, sealIv: reads.iv, sealSeq: 0, openKey: writes.key, openIv: writes.iv, openSeq: 0 }, () => {});
  assert.ok(tr);
  t.after(() => tr.close());
  assert.ok(tr.expect(SID));
  let ended!: (e: PairEnd) => void;
  const end = new Promise<PairEnd>((r) => (ended = r));
  assert.ok(tr.attach(SID, client.conn, 0, true, ended));
  const reader = new RecordReader({ ...reads });
  trunk.peer.on('data', (c: Buffer) => reader.push(c));
  const frames = (): Frame[] =>
    reader.records.filter((r) => r.type === TRUNK).map((r) => ({ sid: r.plain.readUInt32BE(0), kind: r.plain[4]!, body: r.plain.subarray(5) }));
  const dataBytes = () => frames().reduce((n, f) => n + (f.kind === 1 ? f.body.length : 0), 0);
  const credit = (inc: number) => {
    const f = Buffer.alloc(9);
    f.writeUInt32BE(SID, 0);
    f[4] = 4;
    f.writeUInt32BE(inc, 5);
    trunk.peer.write(seal(writes, TRUNK, f));
  };
  return { dp, client: client.peer, reader, frames, dataBytes, credit, end };
}

test('trunk reads: a window of DATA in frames of at most the frame size, a credit that is not a multiple of a frame sent as exactly that, every byte in order', { skip }, async (t) => {
  const r = await rawTrunk(t);
  const payload = randomBytes(1024 * 1024);
  r.client.write(payload);
  await until(() => r.dataBytes() >= TRUNK_WINDOW_BYTES, 'the first window');
  assert.equal(r.dataBytes(), TRUNK_WINDOW_BYTES, 'no DATA beyond the window without credit');

  // A frame and a half of credit: exactly that much, in frames of at most the frame size (as many
  // reads as the client's segments take to arrive), the last one short.
  const extra = FRAME_MAX + 10_000;
  const before = r.frames().length;
  r.credit(extra);
  await until(() => r.dataBytes() >= TRUNK_WINDOW_BYTES + extra, 'the credited bytes');
  assert.equal(r.dataBytes(), TRUNK_WINDOW_BYTES + extra, 'exactly the credit');
  const credited = r.frames().slice(before).map((f) => f.body.length);
  assert.ok(credited.length >= 2 && credited.every((n) => n <= FRAME_MAX), `frames of at most ${FRAME_MAX}: ${credited}`);

  r.credit(payload.length);
  r.client.end();
  await until(() => r.frames().some((f) => f.kind === 2), 'the END frame');
  const frames = r.frames();
  assert.ok(frames.every((f) => f.sid === SID));
  assert.equal(frames.at(-1)!.kind, 2, 'END after every DATA frame');
  const data = frames.filter((f) => f.kind === 1);
  assert.ok(data.every((f) => f.body.length > 0 && f.body.length <= FRAME_MAX), 'every DATA frame at most the frame size');
  assert.ok(data.some((f) => f.body.length === FRAME_MAX), 'a read of a backlog fills a whole frame');
  assert.deepEqual(Buffer.concat(data.map((f) => f.body)), payload);
});

test('trunk reads: KEY_UPDATE every two records: the far end opens every record, bytes exact', { skip }, async (t) => {
  const r = await rawTrunk(t);
  r.dp.setSealedLimits(3, 2 ** 36); // a KEY_UPDATE after every two records
  t.after(() => r.dp.setSealedLimits(2 ** 24, 2 ** 36));
  const payload = randomBytes(700_000);
  r.credit(payload.length);
  r.client.end(payload);
  await until(() => r.frames().some((f) => f.kind === 2), 'the END frame');
  const data = r.frames().filter((f) => f.kind === 1);
  assert.deepEqual(Buffer.concat(data.map((f) => f.body)), payload);
  assert.ok(data.every((f) => f.body.length <= FRAME_MAX));
  const updates = r.reader.records.filter((x) => x.type === KEY_UPDATE).length;
  assert.ok(updates >= data.length / 3 - 1, `a KEY_UPDATE every two records or so (${updates} for ${data.length} DATA frames)`);
});
