import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { PairEnd } from '../../src/datapath/stream-datapath.js';
import { DATA, END, KEY_UPDATE, RecordReader, acceptedConn, farEnd, nativeDp, peerEnd, seal, skip, testKeys } from './sealed-harness.js';

// The native sealed pair's wire (docs/datapath.md "The sealed pair"): a Node socket stands for the
// far end of the data connection and speaks records made with node:crypto, independently of the
// engine's C++, so every byte the engine writes and every verdict it gives is checked against
// the format itself.

/** A plain connection joined to a sealed one whose far end is a raw Node socket. */
async function sealedPair(t: TestContext, host: string, sealSeq = 0, openSeq = 0, idleMs = 0) {
  const dp = nativeDp();
  const plain = await acceptedConn(t, host);
  const sealed = await acceptedConn(t, host);
  const keys = testKeys(sealSeq, openSeq);
  let endOf!: (e: PairEnd) => void;
  const ended = new Promise<PairEnd>((r) => (endOf = r));
  const stop = dp.pipeSealed(plain.conn, sealed.conn, keys, idleMs, endOf);
  assert.ok(stop, 'joined in the native datapath');
  const far = farEnd(keys);
  const reader = new RecordReader(far.reads);
  sealed.peer.on('data', (c: Buffer) => reader.push(c));
  return { client: plain.peer, far: sealed.peer, reader, writes: far.writes, ended, keys };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

for (const host of ['127.0.0.1', '::1']) {
  test(`sealed pair [${host}]: golden bytes both ways, END for a FIN, FIN for an END, then both close`, { skip }, async (t) => {
    const p = await sealedPair(t, host, 5, 7);
    const expected = seal({ key: p.keys.sealKey, iv: p.keys.sealIv, seq: 5n }, DATA, Buffer.from('hello'));
    const raw: Buffer[] = [];
    p.far.on('data', (c: Buffer) => raw.push(c));
    p.client.write('hello');
    await until(() => Buffer.concat(raw).length >= expected.length, 'the first record');
    assert.deepEqual(Buffer.concat(raw), expected, 'the record is what node:crypto seals');

    // The open direction: two records (sequence 7 and 8) arrive as plaintext.
    p.far.write(Buffer.concat([seal(p.writes, DATA, Buffer.from('wor')), seal(p.writes, DATA, Buffer.from('ld'))]));
    const got: Buffer[] = [];
    p.client.on('data', (c: Buffer) => got.push(c));
    await until(() => Buffer.concat(got).length === 5, 'the opened plaintext');
    assert.equal(Buffer.concat(got).toString(), 'world');

    // The client's FIN becomes an END record; the far end's END becomes the client's FIN.
    p.client.end();
    await until(() => p.reader.records.some((r) => r.type === END), 'the END record');
    assert.deepEqual(
      p.reader.records.map((r) => [r.type, r.seq]),
      [
        [DATA, 5n],
        [END, 6n],
      ],
    );
    const clientEnded = once(p.client, 'end');
    const farClosed = once(p.far, 'end');
    p.far.write(seal(p.writes, END));
    await clientEnded;
    const end = await p.ended;
    await farClosed; // both directions ended: the sealed side is closed (a FIN)
    assert.equal(end.reason, 'client-closed');
    assert.equal(end.code, undefined);
    assert.equal(end.bytesFromClient, 5);
    assert.equal(end.bytesToClient, 5);
  });
}

test('sealed pair: a forced key update: the sealer sends KEY_UPDATE and rekeys by HKDF, the opener follows one', { skip }, async (t) => {
  const dp = nativeDp();
  dp.setSealedLimits(3, 2 ** 36);
  t.after(() => dp.setSealedLimits(2 ** 24, 2 ** 36));
  const p = await sealedPair(t, '127.0.0.1', 1, 0);
  for (const word of ['a', 'b', 'c', 'd']) {
    const n = p.reader.records.length;
    p.client.write(word);
    await until(() => p.reader.records.some((r) => r.plain.toString() === word), `record ${word}`);
  }
  await until(() => p.reader.records.length === 6, `the last KEY_UPDATE (${p.reader.records.map((r) => r.type).join()})`);
  // At most three records per key (the limit), KEY_UPDATE the last of them, sent as soon as one
  // more record would pass it; the reader (node:crypto, hkdfSync) follows.
  assert.deepEqual(
    p.reader.records.map((r) => [r.type, r.seq, r.plain.toString()]),
    [
      [DATA, 1n, 'a'],
      [DATA, 2n, 'b'],
      [KEY_UPDATE, 3n, ''],
      [DATA, 0n, 'c'],
      [DATA, 1n, 'd'],
      [KEY_UPDATE, 2n, ''],
    ],
  );
  // The opener rekeys when it opens a KEY_UPDATE.
  p.far.write(Buffer.concat([seal(p.writes, DATA, Buffer.from('x')), seal(p.writes, KEY_UPDATE), seal(p.writes, DATA, Buffer.from('y')), seal(p.writes, KEY_UPDATE)]));
  p.far.write(seal(p.writes, DATA, Buffer.from('z')));
  const got: Buffer[] = [];
  p.client.on('data', (c: Buffer) => got.push(c));
  await until(() => Buffer.concat(got).length === 3, 'the plaintext across key updates');
  assert.equal(Buffer.concat(got).toString(), 'xyz');
});

/** Sends `bytes` on the far end and expects the client reset and the pair ended with `code`. */
async function expectReset(t: TestContext, bytes: (w: ReturnType<typeof farEnd>['writes']) => Buffer, code: string, fin = false) {
  const p = await sealedPair(t, '127.0.0.1');
  p.client.resume();
  const client = peerEnd(p.client);
  const far = peerEnd(p.far);
  p.far.write(bytes(p.writes));
  if (fin) p.far.end();
  const end = await p.ended;
  assert.equal(end.reason, 'upstream-error');
  assert.equal(end.code, code);
  assert.equal(await client, 'reset', 'the plain side is reset');
  if (!fin) assert.equal(await far, 'reset', 'the sealed side is reset');
}

test('sealed pair: a FIN without END resets the plain side (ESEALED_TRUNCATED)', { skip }, async (t) => {
  await expectReset(t, (w) => seal(w, DATA, Buffer.from('partial')), 'ESEALED_TRUNCATED', true);
});

test('sealed pair: a FIN inside a record is a truncation too', { skip }, async (t) => {
  await expectReset(t, (w) => seal(w, DATA, Buffer.from('partial')).subarray(0, 10), 'ESEALED_TRUNCATED', true);
});

test('sealed pair: a flipped ciphertext byte resets both sides (ESEALED_AUTH)', { skip }, async (t) => {
  await expectReset(
    t,
    (w) => {
      const r = seal(w, DATA, Buffer.from('forged?'));
      r[6]! ^= 1;
      return r;
    },
    'ESEALED_AUTH',
  );
});

test('sealed pair: a record under the wrong sequence fails authentication (a replayed record)', { skip }, async (t) => {
  await expectReset(
    t,
    (w) => {
      const first = seal(w, DATA, Buffer.from('one'));
      return Buffer.concat([first, first]);
    },
    'ESEALED_AUTH',
  );
});

for (const [what, header] of [
  ['an unknown type', Buffer.from([9, 0, 0, 1])],
  ['a HELLO after the hello', Buffer.from([3, 0, 0, 0])],
  ['an empty DATA record', Buffer.from([DATA, 0, 0, 0])],
  ['a DATA record over 65536 bytes', Buffer.from([DATA, 1, 0, 1])],
  ['an END with a length', Buffer.from([END, 0, 0, 2])],
] as const) {
  test(`sealed pair: ${what} resets both sides (ESEALED_FORMAT)`, { skip }, async (t) => {
    await expectReset(t, () => Buffer.concat([header, Buffer.alloc(40)]), 'ESEALED_FORMAT');
  });
}

test('sealed pair: bytes after END are a format error', { skip }, async (t) => {
  await expectReset(t, (w) => Buffer.concat([seal(w, END), seal(w, DATA, Buffer.from('late'))]), 'ESEALED_FORMAT');
});

test('sealed pair: a reset plain side resets the sealed side, no END sent', { skip }, async (t) => {
  const p = await sealedPair(t, '127.0.0.1');
  const far = peerEnd(p.far);
  p.client.write('x');
  await until(() => p.reader.records.length === 1, 'the first record');
  p.client.resetAndDestroy();
  const end = await p.ended;
  assert.equal(end.reason, 'client-error');
  assert.equal(end.code, 'ECONNRESET');
  assert.equal(await far, 'reset');
  assert.deepEqual(
    p.reader.records.map((r) => r.type),
    [DATA],
  );
});

test('sealed pair: no bytes either way for idleTimeoutMs ends it (idle-timeout)', { skip }, async (t) => {
  const p = await sealedPair(t, '127.0.0.1', 0, 0, 150);
  p.client.write('x');
  const started = Date.now();
  const end = await p.ended;
  assert.equal(end.reason, 'idle-timeout');
  assert.equal(end.bytesFromClient, 1);
  assert.ok(Date.now() - started >= 100, 'not before the timeout');
});

test('sealed pair: stop() closes both and gives the counters; no end event follows', { skip }, async (t) => {
  const dp = nativeDp();
  const plain = await acceptedConn(t, '127.0.0.1');
  const sealed = await acceptedConn(t, '127.0.0.1');
  let ends = 0;
  const stop = dp.pipeSealed(plain.conn, sealed.conn, testKeys(), 0, () => void ends++)!;
  const got: Buffer[] = [];
  sealed.peer.on('data', (c: Buffer) => got.push(c));
  plain.peer.write('abc');
  await until(() => Buffer.concat(got).length === 4 + 3 + 16, 'the record');
  const closed = once(sealed.peer, 'end');
  assert.deepEqual(stop(), { bytesFromClient: 3, bytesToClient: 0 });
  await closed;
  assert.equal(ends, 0);
});

test('sealed pair: bytes read before the join (after a PROXY header, after the hello) are sealed and opened first', { skip }, async (t) => {
  const dp = nativeDp();
  const plain = await acceptedConn(t, '127.0.0.1');
  const sealed = await acceptedConn(t, '127.0.0.1');
  const keys = testKeys(1, 0);
  const far = farEnd(keys);
  type Held = { readable(): Promise<void>; read(b: Buffer): number; unread: Buffer | undefined };
  const readHeld = async (c: Held, want: number) => {
    const buf = Buffer.alloc(want);
    let n = 0;
    while (n < want) {
      await c.readable();
      const r = c.read(buf.subarray(n));
      if (r > 0) n += r;
    }
    return buf;
  };
  // Read by the caller before the join, as a route reads a PROXY header and the gateway the hello.
  plain.peer.write('early');
  const first = seal(far.writes, DATA, Buffer.from('first'));
  const second = seal(far.writes, DATA, Buffer.from('second'));
  sealed.peer.write(Buffer.concat([first, second.subarray(0, 9)]));
  const p = plain.conn as unknown as Held;
  const s = sealed.conn as unknown as Held;
  p.unread = await readHeld(p, 5);
  s.unread = await readHeld(s, first.length + 9);
  let endOf!: (e: PairEnd) => void;
  const ended = new Promise<PairEnd>((r) => (endOf = r));
  assert.ok(dp.pipeSealed(plain.conn, sealed.conn, keys, 0, endOf));
  const reader = new RecordReader(far.reads);
  sealed.peer.on('data', (c: Buffer) => reader.push(c));
  const got: Buffer[] = [];
  plain.peer.on('data', (c: Buffer) => got.push(c));
  sealed.peer.write(second.subarray(9));
  plain.peer.end();
  await until(() => reader.records.length === 2 && Buffer.concat(got).length === 11, 'the early bytes both ways');
  assert.equal(Buffer.concat(got).toString(), 'firstsecond');
  assert.deepEqual(
    reader.records.map((r) => [r.type, r.seq, r.plain.toString()]),
    [
      [DATA, 1n, 'early'],
      [END, 2n, ''],
    ],
  );
  sealed.peer.write(seal(far.writes, END));
  const end = await ended;
  assert.deepEqual(end, { reason: 'client-closed', bytesFromClient: 5, bytesToClient: 11 });
});

test('sealed pair: records arriving in pieces of a few bytes (split headers, bodies and tags) open the same', { skip }, async (t) => {
  const p = await sealedPair(t, '127.0.0.1');
  p.far.setNoDelay(true);
  const plains = [Buffer.from('a'), randomBytes(300), randomBytes(65536), Buffer.from('end')];
  const wire = Buffer.concat(plains.map((b) => seal(p.writes, DATA, b)));
  const got: Buffer[] = [];
  p.client.on('data', (c: Buffer) => got.push(c));
  // Pieces of 1-7 bytes for the small records, then up to 9,000 for the large one; each its own write.
  for (let o = 0; o < wire.length; ) {
    const n = Math.min(wire.length - o, o < 400 ? 1 + (o % 7) : 1 + ((o * 7919) % 9000));
    p.far.write(wire.subarray(o, o + n));
    o += n;
    await new Promise((r) => setImmediate(r));
  }
  const want = Buffer.concat(plains);
  await until(() => Buffer.concat(got).length >= want.length, 'all the plaintext');
  assert.ok(Buffer.concat(got).equals(want), 'the same bytes in order');
});
