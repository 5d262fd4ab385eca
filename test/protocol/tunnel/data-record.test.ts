import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DataRecordType, RecordReader, RecordSealer, SealedRecordError, encodeDataHello, nextDataKey, openRecord, readDataHello, readRecordHeader,
  recordNonce, sealRecord, verifyDataHello, MAX_RECORDS_PER_KEY, type RecordEvent,
} from '../../../src/protocol/tunnel/index.js';

/**
 * The data connection record codec (docs/tunnel-protocol.md, "Data connections"). The golden bytes
 * were computed with Python's `cryptography` (AESGCM, HKDF), an implementation independent of
 * node:crypto, from the same key, iv and sequence numbers.
 */

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const IV = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');

function sealedCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof SealedRecordError && e.code === code);
}

test('golden: nonce = iv XOR u64 sequence, DATA and END records, KEY_UPDATE derivation, hello', () => {
  assert.equal(recordNonce(IV, 0x01_0203_0405).toString('hex'), 'a0a1a2a3a4a5a6a6aaaaaeae');
  assert.equal(sealRecord(KEY, IV, 0, DataRecordType.data, Buffer.from('hello')).toString('hex'), '01000005c2e354d71150f8c0f53d97f0671089dc2b9327254b');
  assert.equal(sealRecord(KEY, IV, 0x01_0203_0405, DataRecordType.end).toString('hex'), '02000000def231985e8779509fba2c37b20fe3dd');
  const next = nextDataKey(KEY, IV);
  assert.equal(next.key.toString('hex'), 'a9321eabe6823a9f164afc402486e461');
  assert.equal(next.iv.toString('hex'), '7affa5a45ac9047c5deb92cb');
  const hello = encodeDataHello(Buffer.alloc(16, 0x11), 7, KEY, IV);
  assert.equal(hello.toString('hex'), '534c4431' + '11'.repeat(16) + '0000000000000007' + '03000000948a12215102b6dfb0ea818dac957140');
  const h = readDataHello(hello);
  assert.equal(h.counter, 7);
  assert.deepEqual(h.token, Buffer.alloc(16, 0x11));
  assert.equal(verifyDataHello(h, KEY, IV), true);
  assert.equal(verifyDataHello(h, next.key, next.iv), false, 'another key does not open the hello');
});

test('open: the sealed plaintext comes back; a flipped bit, another sequence or another header fails with ESEALED_AUTH', () => {
  const r = sealRecord(KEY, IV, 5, DataRecordType.data, Buffer.from('payload'));
  assert.equal(openRecord(KEY, IV, 5, r, 0, 7).toString(), 'payload');
  sealedCode(() => openRecord(KEY, IV, 6, r, 0, 7), 'ESEALED_AUTH');
  const flipped = Buffer.from(r);
  flipped[6]! ^= 1;
  sealedCode(() => openRecord(KEY, IV, 5, flipped, 0, 7), 'ESEALED_AUTH');
  const retyped = Buffer.from(r);
  retyped[0] = DataRecordType.end;
  sealedCode(() => readRecordHeader(retyped, 0), 'ESEALED_FORMAT'); // END with a length
});

test('headers: unknown types, empty or oversized DATA and control records with a length are format errors', () => {
  sealedCode(() => readRecordHeader(Buffer.from([0, 0, 0, 1]), 0), 'ESEALED_FORMAT');
  sealedCode(() => readRecordHeader(Buffer.from([6, 0, 0, 0]), 0), 'ESEALED_FORMAT');
  sealedCode(() => readRecordHeader(Buffer.from([5, 0, 0, 1]), 0), 'ESEALED_FORMAT'); // READY carries nothing
  sealedCode(() => readRecordHeader(Buffer.from([1, 0, 0, 0]), 0), 'ESEALED_FORMAT');
  sealedCode(() => readRecordHeader(Buffer.from([1, 0x01, 0x00, 0x01]), 0), 'ESEALED_FORMAT');
  assert.deepEqual(readRecordHeader(Buffer.from([1, 0x01, 0x00, 0x00]), 0), { type: 1, length: 65_536 });
  sealedCode(() => readDataHello(Buffer.alloc(48)), 'ESEALED_FORMAT');
});

test('stream: records split at any byte boundary reassemble; 64 KiB+ chunks split into records; END then nothing', () => {
  const sealer = new RecordSealer(KEY, IV, 1);
  const big = Buffer.alloc(150_000, 7);
  const wire = Buffer.concat([...sealer.data(Buffer.from('ab')), ...sealer.data(big), sealer.end()]);
  for (const step of [1, 3, 4096, wire.length]) {
    const reader = new RecordReader(KEY, IV, 1);
    const events: RecordEvent[] = [];
    for (let at = 0; at < wire.length; at += step) reader.push(wire.subarray(at, at + step), events);
    const data = Buffer.concat(events.flatMap((e) => (e.kind === 'data' ? [e.data] : [])));
    assert.equal(data.length, 150_002);
    assert.equal(events.at(-1)!.kind, 'end');
    assert.equal(events.length, 1 + 3 + 1, 'ab, then 150000 bytes as 3 records, then END');
    assert.equal(reader.ended, true);
    assert.equal(reader.partial, 0);
    sealedCode(() => reader.push(Buffer.from([1])), 'ESEALED_FORMAT');
  }
});

test('stream: a reordered or dropped record fails authentication', () => {
  const sealer = new RecordSealer(KEY, IV, 0);
  const [a, b] = [sealer.data(Buffer.from('one'))[0]!, sealer.data(Buffer.from('two'))[0]!];
  sealedCode(() => new RecordReader(KEY, IV, 0).push(b), 'ESEALED_AUTH');
  const r = new RecordReader(KEY, IV, 0);
  r.push(a);
  sealedCode(() => r.push(a), 'ESEALED_AUTH');
});

test('key update: the sealer changes key before 2^24 records, the reader follows, sequence back to 0', () => {
  const sealer = new RecordSealer(KEY, IV, 0);
  sealer.skipTo(MAX_RECORDS_PER_KEY - 2);
  const records = sealer.data(Buffer.from('last'));
  assert.equal(records.length, 1, 'still fits under the first key');
  const more = sealer.data(Buffer.from('next'));
  assert.equal(more.length, 2, 'KEY_UPDATE then the data');
  assert.equal(more[0]![0], DataRecordType.keyUpdate);
  const next = nextDataKey(KEY, IV);
  assert.equal(openRecord(next.key, next.iv, 0, more[1]!, 0, 4).toString(), 'next');
  // The reader at the same position follows the update.
  const reader = new RecordReader(KEY, IV, MAX_RECORDS_PER_KEY - 2);
  const events = reader.push(Buffer.concat([...records, ...more]));
  assert.deepEqual(events.map((e) => (e.kind === 'data' ? e.data.toString() : e.kind)), ['last', 'next']);
});
