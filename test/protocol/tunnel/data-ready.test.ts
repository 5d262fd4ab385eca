import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DATA_READY_BYTES, RecordReader, SealedRecordError, encodeDataReady, verifyDataReady, type RecordEvent } from '../../../src/protocol/tunnel/index.js';

/**
 * READY, the agent's first record on a data connection a stream starts on (docs/tunnel-protocol.md,
 * "Data connections"). The golden record was computed with Python's `cryptography` (AESGCM), an
 * implementation independent of node:crypto, from the key and iv of data-record.test.ts.
 */

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const IV = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');

test('golden: READY at sequence 1 (the one after the hello)', () => {
  const ready = encodeDataReady(KEY, IV, 1);
  assert.equal(ready.toString('hex'), '0500000000e59bbd8a04cef14f664fd521371a13');
  assert.equal(ready.length, DATA_READY_BYTES);
  assert.equal(verifyDataReady(ready, KEY, IV, 1), true);
});

test('READY is refused at another sequence, under another key, with a flipped bit, as another type or size', () => {
  const ready = encodeDataReady(KEY, IV, 1);
  assert.equal(verifyDataReady(ready, KEY, IV, 0), false, 'sequence 0 is the hello');
  assert.equal(verifyDataReady(ready, Buffer.alloc(16), IV, 1), false);
  for (const at of [0, 3, 4, 19]) {
    const bad = Buffer.from(ready);
    bad[at]! ^= 1;
    assert.equal(verifyDataReady(bad, KEY, IV, 1), false, `bit flipped at byte ${at}`);
  }
  assert.equal(verifyDataReady(ready.subarray(0, 19), KEY, IV, 1), false);
});

test('READY inside a stream is a format error of the record reader (the engine refuses its type too)', () => {
  const reader = new RecordReader(KEY, IV, 1);
  const out: RecordEvent[] = [];
  assert.throws(() => reader.push(encodeDataReady(KEY, IV, 1), out), (e: unknown) => e instanceof SealedRecordError && e.code === 'ESEALED_FORMAT');
});
