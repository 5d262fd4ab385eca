import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ControlFrameReader, FrameType, decodeControlFrame, encodeControlMessage, encodeStreamDataHeader, frameTypeByte, frameTypeName,
  type ControlMessageType,
} from '../../../src/protocol/tunnel/index.js';
import { GOLDEN, hexBytes } from './golden.js';

for (const g of GOLDEN) {
  test(`golden: ${g.name} encodes to its documented bytes`, () => {
    assert.equal(encodeControlMessage(g.message).toString('hex'), hexBytes(g.hex).toString('hex'));
  });

  test(`golden: ${g.name} decodes from its documented bytes; every prefix is need-more`, () => {
    const bytes = hexBytes(g.hex);
    const r = decodeControlFrame(bytes);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.equal(r.length, bytes.length);
    assert.deepEqual(r.message, g.message);
    for (let i = 0; i < bytes.length; i++) assert.deepEqual(decodeControlFrame(bytes.subarray(0, i)), { kind: 'need-more' }, `prefix ${i}`);
  });
}

test('golden: every message type has at least one golden frame', () => {
  const covered = new Set(GOLDEN.map((g) => g.message.type));
  const all = Object.keys(FrameType).map((k) => frameTypeName(FrameType[k as keyof typeof FrameType])!);
  assert.equal(all.length, 28);
  for (const t of all) assert.ok(covered.has(t), `no golden frame for ${t}`);
});

test('type bytes map both ways', () => {
  for (const g of GOLDEN) {
    const byte = hexBytes(g.hex)[4]!;
    assert.equal(frameTypeByte(g.message.type), byte);
    assert.equal(frameTypeName(byte), g.message.type as ControlMessageType);
  }
  assert.equal(frameTypeName(0x00), undefined);
  assert.equal(frameTypeName(0xff), undefined);
});

test('frames are decoded back to back from one buffer, each with its own length', () => {
  const all = Buffer.concat(GOLDEN.map((g) => hexBytes(g.hex)));
  let pos = 0;
  for (const g of GOLDEN) {
    const r = decodeControlFrame(all.subarray(pos));
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.deepEqual(r.message, g.message);
    pos += r.length;
  }
  assert.equal(pos, all.length);
});

test('the frame reader yields the golden messages whatever the chunking, down to one byte', () => {
  const all = Buffer.concat(GOLDEN.map((g) => hexBytes(g.hex)));
  for (const size of [1, 2, 3, 5, 7, 64, all.length]) {
    const reader = new ControlFrameReader();
    const got = [];
    for (let i = 0; i < all.length; i += size) got.push(...reader.push(all.subarray(i, i + size)));
    assert.deepEqual(got, GOLDEN.map((g) => g.message), `chunk size ${size}`);
    assert.equal(reader.bufferedBytes, 0);
  }
});

test('encodeStreamDataHeader + data equals the encoded STREAM_DATA frame', () => {
  const data = Buffer.from('hi');
  const h = encodeStreamDataHeader(2, data.length);
  assert.equal(Buffer.concat([h, data]).toString('hex'), encodeControlMessage({ type: 'stream-data', streamId: 2, data }).toString('hex'));
  assert.equal(h.toString('hex'), '000000072200000002');
});
