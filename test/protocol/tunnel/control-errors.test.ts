import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ControlFrameReader, MAX_FRAME_BYTES, MAX_STREAM_DATA_BYTES, PRE_AUTH_MAX_FRAME_BYTES, decodeControlFrame, encodeControlMessage,
  encodeStreamDataHeader, isValidTunnelName, type ControlMessage,
} from '../../../src/protocol/tunnel/index.js';
import { hexBytes } from './golden.js';
import { assertTunnelError } from './helpers.js';

const decode = (hex: string, maxFrameBytes?: number) => decodeControlFrame(hexBytes(hex), { maxFrameBytes });

test('an over-long length is refused from its 4 bytes alone, before the body arrives', () => {
  assert.deepEqual(decode('00000101'), { kind: 'need-more' });
  assertTunnelError(() => decode('00000101', PRE_AUTH_MAX_FRAME_BYTES), 'frame-too-large');
  assert.deepEqual(decode('00000100', PRE_AUTH_MAX_FRAME_BYTES), { kind: 'need-more' });
  assertTunnelError(() => decode((MAX_FRAME_BYTES + 1).toString(16).padStart(8, '0')), 'frame-too-large');
  assertTunnelError(() => decode('ffffffff'), 'frame-too-large');
});

test('the frame reader refuses an over-long length split across chunks, and stays failed', () => {
  const reader = new ControlFrameReader({ maxFrameBytes: PRE_AUTH_MAX_FRAME_BYTES });
  assert.deepEqual(reader.push(hexBytes('00')), []);
  assert.deepEqual(reader.push(hexBytes('00')), []);
  assert.deepEqual(reader.push(hexBytes('01')), []);
  assertTunnelError(() => reader.push(hexBytes('01')), 'frame-too-large');
  assertTunnelError(() => reader.push(hexBytes('00000005400000000')), 'frame-too-large');
  assert.equal(reader.bufferedBytes, 0);
});

test('the frame reader refuses an over-long length that follows a good frame in one chunk', () => {
  const reader = new ControlFrameReader({ maxFrameBytes: PRE_AUTH_MAX_FRAME_BYTES });
  assertTunnelError(() => reader.push(hexBytes('0000000540000000010000ffff')), 'frame-too-large');
});

test('the frame reader limit can be raised after authentication', () => {
  const reader = new ControlFrameReader({ maxFrameBytes: PRE_AUTH_MAX_FRAME_BYTES });
  reader.maxFrameBytes = MAX_FRAME_BYTES;
  const big = encodeControlMessage({ type: 'stream-data', streamId: 2, data: Buffer.alloc(MAX_STREAM_DATA_BYTES, 1) });
  const got = [...reader.push(big.subarray(0, 100)), ...reader.push(big.subarray(100))];
  assert.equal(got.length, 1);
  assert.equal(reader.maxFrameBytes, MAX_FRAME_BYTES);
});

test('a zero length, an unknown type and trailing bytes are refused', () => {
  assertTunnelError(() => decode('00000000'), 'malformed');
  assertTunnelError(() => decode('00000001 00'), 'unknown-type');
  assertTunnelError(() => decode('00000001 7f'), 'unknown-type');
  assertTunnelError(() => decode('00000006 40 00000001 00'), 'malformed');
  assertTunnelError(() => decode('00000004 40 000001'), 'malformed');
  assertTunnelError(() => decode('00000001 13'), 'malformed');
});

test('names: 1-64 bytes of [A-Za-z0-9._-], not starting with . or -', () => {
  for (const ok of ['a', 'home', 'Home_1', 'gw.example-2', '_x', 'x'.repeat(64)]) assert.ok(isValidTunnelName(ok), ok);
  for (const bad of ['', '.a', '-a', 'a b', 'a/b', 'é', 'x'.repeat(65), 'a\0', 'a:b']) assert.ok(!isValidTunnelName(bad), bad);
  assertTunnelError(() => decode('00000002 50 00'), 'bad-name');
  assertTunnelError(() => decode('00000003 50 01 2e'), 'bad-name');
  assertTunnelError(() => decode('00000003 50 01 c3'), 'bad-name');
  assertTunnelError(() => decode('00000003 50 02 61'), 'malformed');
  assertTunnelError(() => encodeControlMessage({ type: 'signal', peer: 'a b', payload: Buffer.alloc(0) }), 'bad-name');
  assertTunnelError(
    () => encodeControlMessage({ type: 'hello', version: 1, name: 'x'.repeat(65), datagramKeyId: 1, resumeKeyId: 0, streamWindow: 1 }),
    'bad-name',
  );
});

test('enum bytes outside their tables are refused', () => {
  assertTunnelError(() => decode('00000004 05 00 0000'), 'malformed'); // refusal code 0
  assertTunnelError(() => decode('00000004 05 13 0000'), 'malformed'); // refusal code 19 (18 is name-in-use)
  assertTunnelError(() => decode('00000006 24 00000002 00'), 'malformed'); // reset code 0
  assertTunnelError(() => decode('00000006 24 00000002 0a'), 'malformed'); // reset code 10
  assertTunnelError(() => decode('00000010 10 0007 03 03 04 4e22 00000000 03 737368'), 'malformed'); // transport 3
  assertTunnelError(() => decode('00000010 10 0007 01 04 04 4e22 00000000 03 737368'), 'malformed'); // proxy protocol 4
  assertTunnelError(() => decode('00000010 10 0007 01 03 05 4e22 00000000 03 737368'), 'malformed'); // family 5
  assertTunnelError(() => decode(`0000002e 04 deadbeef 02 00010000 000061a8 ${'55'.repeat(32)}`), 'malformed'); // auth-ok flags
});

test('zero stream ids and tags, bad windows and undefined flag bits are refused', () => {
  assertTunnelError(() => decode('00000005 21 00000000'), 'malformed');
  assertTunnelError(() => decode('00000007 22 00000000 6869'), 'malformed');
  assertTunnelError(() => decode('00000005 31 00000000'), 'malformed');
  assertTunnelError(() => decode('00000006 30 00000000 00'), 'malformed');
  assertTunnelError(() => decode('00000006 30 00000001 02'), 'malformed');
  assertTunnelError(() => decode('00000009 25 00000002 00000000'), 'malformed');
  assertTunnelError(() => decode('00000009 25 00000002 80000000'), 'malformed');
  assertTunnelError(() => decode('00000011 01 0001 ffffffff 0badf00d 00000000 01 61'), 'malformed');
  assertTunnelError(() => decode('00000005 22 00000002'), 'malformed'); // empty stream data
});

test('payload limits hold on both sides', () => {
  const data = (n: number): ControlMessage => ({ type: 'stream-data', streamId: 1, data: Buffer.alloc(n) });
  encodeControlMessage(data(MAX_STREAM_DATA_BYTES));
  assertTunnelError(() => encodeControlMessage(data(MAX_STREAM_DATA_BYTES + 1)), 'bad-value');
  assertTunnelError(() => encodeControlMessage(data(0)), 'bad-value');
  const over = Buffer.alloc(5 + 4 + MAX_STREAM_DATA_BYTES + 1);
  over.writeUInt32BE(over.length - 4, 0);
  over[4] = 0x22;
  over.writeUInt32BE(1, 5);
  assertTunnelError(() => decodeControlFrame(over), 'malformed');
  assertTunnelError(() => encodeControlMessage({ type: 'signal', peer: 'b', payload: Buffer.alloc(16_385) }), 'bad-value');
  assertTunnelError(() => encodeStreamDataHeader(1, 0), 'bad-value');
  assertTunnelError(() => encodeStreamDataHeader(0, 1), 'bad-value');
});

test('encoder refuses values it cannot represent', () => {
  const bad: ControlMessage[] = [
    { type: 'ping', counter: -1 },
    { type: 'ping', counter: 2 ** 32 },
    { type: 'ping', counter: 1.5 },
    { type: 'unpublish', serviceId: 0x10000 },
    { type: 'stream-end', streamId: 0 },
    { type: 'window-update', streamId: 1, increment: 0 },
    { type: 'window-update', streamId: 1, increment: 2 ** 31 },
    { type: 'challenge', nonce: Buffer.alloc(31) },
    { type: 'auth', digest: Buffer.alloc(33) },
    { type: 'datagram-close', tag: 0 },
    { type: 'publish-ok', serviceId: 1, bound: { address: 'example.net', port: 1, family: 4 } },
    { type: 'publish-ok', serviceId: 1, bound: { address: '127.0.0.1', port: 65536, family: 4 } },
    { type: 'auth-error', code: 'nope' as 'internal', message: '' },
    { type: 'stream-reset', streamId: 1, code: 'nope' as 'cancel' },
    { type: 'nope' } as unknown as ControlMessage,
  ];
  for (const m of bad) assertTunnelError(() => encodeControlMessage(m), undefined);
});

test('reason texts are cut to 200 bytes on a character boundary', () => {
  const long = 'é'.repeat(300); // 600 bytes
  const f = encodeControlMessage({ type: 'goaway', code: 'internal', message: long });
  const r = decodeControlFrame(f);
  assert.equal(r.kind, 'ok');
  if (r.kind === 'ok' && r.message.type === 'goaway') assert.equal(r.message.message, 'é'.repeat(100));
  const cut = encodeControlMessage({ type: 'goaway', code: 'internal', message: `a${'é'.repeat(150)}` });
  assert.equal(cut.readUInt16BE(6), 199, 'a two-byte character is not split');
  assertTunnelError(() => decode(`000000cd 06 10 00c9 ${'61'.repeat(201)}`), 'malformed');
});

test('IPv4-mapped IPv6 endpoints are written as IPv4 (the one canonical form)', () => {
  const f = encodeControlMessage({ type: 'publish-ok', serviceId: 1, bound: { address: '::ffff:10.0.0.1', port: 80, family: 6 } });
  assert.equal(f.toString('hex'), hexBytes('0000000a 11 0001 04 0050 0a000001').toString('hex'));
  const mapped = decode('00000016 11 0001 06 0050 00000000000000000000ffff0a000001');
  assert.equal(mapped.kind, 'ok');
  if (mapped.kind === 'ok' && mapped.message.type === 'publish-ok') assert.deepEqual(mapped.message.bound, { address: '10.0.0.1', port: 80, family: 4 });
});

test('a reason text that is not valid UTF-8 is refused', () => {
  assertTunnelError(() => decode('00000005 05 02 0001 ff'), 'malformed');
  assertTunnelError(() => decode('00000006 05 02 0002 c328'), 'malformed');
  const bom = decode('00000007 05 02 0003 efbbbf');
  assert.equal(bom.kind, 'ok');
  if (bom.kind === 'ok' && bom.message.type === 'auth-error') assert.equal(bom.message.message, '\uFEFF');
});
