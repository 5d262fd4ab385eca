import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../../src/core/errors.js';
import {
  ChannelNumber, Data, DontFragment, ErrorCode, EvenPort, IceControlling, Lifetime, MappedAddress, PasswordAlgorithms,
  RequestedAddressFamily, RequestedTransport, ReservationToken, StunAttr, StunMethod, UnknownAttributes, UseCandidate,
  Username, XorMappedAddress, XorPeerAddress, attr, classifyDatagram, computeIntegrity, crc32, crc32Table, decodeMessageType,
  decodeStunDatagram, decodeStunMessage, encodeMessageType, encodeStunMessage, encodedStunLength, getAttribute,
  getAttributes, hasAttribute, shortTermKey, stunMessage, verifyIntegrity, type StunClass,
} from '../../../src/protocol/stun/index.js';

const TID = Buffer.from('0102030405060708090a0b0c', 'hex');
const invalid = (e: unknown): boolean => isSluiceError(e, 'SLUICE_ERR_STUN_INVALID');

test('message type interleaves method and class bits (RFC 8489 §5)', () => {
  const cases: [StunClass, number, number][] = [
    ['request', StunMethod.Binding, 0x0001], ['success', StunMethod.Binding, 0x0101],
    ['error', StunMethod.Binding, 0x0111], ['indication', StunMethod.Binding, 0x0011],
    ['request', StunMethod.Allocate, 0x0003], ['error', StunMethod.Allocate, 0x0113],
    ['indication', StunMethod.Send, 0x0016], ['indication', StunMethod.Data, 0x0017],
    ['success', StunMethod.ChannelBind, 0x0109], ['request', 0xfff, 0x3eef],
  ];
  for (const [cls, method, type] of cases) {
    assert.equal(encodeMessageType(cls, method), type, `${cls} 0x${method.toString(16)}`);
    assert.deepEqual(decodeMessageType(type), { cls, method });
  }
  assert.throws(() => encodeMessageType('request', 0x1000), invalid);
});

test('stream framing: need-more, mismatch, and a message followed by more bytes', () => {
  const msg = encodeStunMessage(stunMessage('request', StunMethod.Binding, TID, [attr(Username, 'ab')]));
  assert.deepEqual(decodeStunMessage(msg.subarray(0, 0)), { kind: 'need-more' });
  assert.deepEqual(decodeStunMessage(msg.subarray(0, 19)), { kind: 'need-more' });
  assert.deepEqual(decodeStunMessage(msg.subarray(0, msg.length - 1)), { kind: 'need-more' });
  assert.deepEqual(decodeStunMessage(Buffer.from([0x40, 0, 0, 0])), { kind: 'mismatch' });
  const noCookie = Buffer.from(msg);
  noCookie.writeUInt32BE(0, 4);
  assert.deepEqual(decodeStunMessage(noCookie), { kind: 'mismatch' });
  const r = decodeStunMessage(Buffer.concat([msg, Buffer.from('tail')]));
  assert.equal(r.kind, 'ok');
  if (r.kind === 'ok') assert.equal(r.length, msg.length);
});

test('datagram framing: not STUN is undefined, truncation and trailing bytes are typed errors', () => {
  const msg = encodeStunMessage(stunMessage('request', StunMethod.Binding, TID));
  assert.equal(msg.length, 20);
  assert.equal(decodeStunDatagram(Buffer.alloc(0)), undefined);
  assert.equal(decodeStunDatagram(Buffer.from('hello')), undefined);
  assert.throws(() => decodeStunDatagram(msg.subarray(0, 10)), invalid);
  assert.throws(() => decodeStunDatagram(Buffer.concat([msg, Buffer.alloc(4)])), invalid);
  const odd = Buffer.concat([msg, Buffer.alloc(2)]);
  odd.writeUInt16BE(2, 2);
  assert.throws(() => decodeStunDatagram(odd), invalid);
});

test('padding: values are unpadded, padding content is ignored and written as zeros', () => {
  const m = stunMessage('request', StunMethod.Binding, TID, [attr(Username, 'abcde'), attr(Data, Buffer.from([9]))]);
  const bytes = encodeStunMessage(m);
  assert.equal(bytes.length, 20 + 4 + 8 + 4 + 4);
  assert.equal(bytes.readUInt16BE(2), bytes.length - 20);
  assert.deepEqual([...bytes.subarray(29, 32)], [0, 0, 0]);
  const dirty = Buffer.from(bytes);
  dirty.fill(0x20, 29, 32);
  const d = decodeStunDatagram(dirty)!;
  assert.equal(getAttribute(d, Username), 'abcde');
  assert.deepEqual(getAttribute(d, Data), Buffer.from([9]));
  assert.equal(encodedStunLength(m), bytes.length);
});

test('attribute overrun and attributes after FINGERPRINT are typed errors', () => {
  const base = encodeStunMessage(stunMessage('request', StunMethod.Binding, TID, [attr(Username, 'abcd')]));
  const over = Buffer.from(base);
  over.writeUInt16BE(5, 22); // USERNAME length 5: its padding runs past the end
  assert.throws(() => decodeStunDatagram(over), invalid);
  const withFp = encodeStunMessage(stunMessage('request', StunMethod.Binding, TID), { fingerprint: true });
  const after = Buffer.concat([withFp, Buffer.from([0x80, 0x22, 0, 0])]);
  after.writeUInt16BE(after.length - 20, 2);
  assert.throws(() => decodeStunDatagram(after), invalid);
});

test('known attributes with impossible values are typed errors at decode time', () => {
  const bad = (type: number, value: Buffer): void => {
    const pad = Buffer.alloc((4 - (value.length % 4)) % 4);
    const head = Buffer.alloc(4);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(value.length, 2);
    const bytes = Buffer.concat([encodeStunMessage(stunMessage('request', StunMethod.Binding, TID)), head, value, pad]);
    bytes.writeUInt16BE(bytes.length - 20, 2);
    assert.throws(() => decodeStunDatagram(bytes), invalid, `0x${type.toString(16)} ${value.toString('hex')}`);
  };
  bad(StunAttr.XorMappedAddress, Buffer.from('0003000000000000', 'hex')); // family 3
  bad(StunAttr.XorMappedAddress, Buffer.from('00010000000000', 'hex')); // 7 bytes
  bad(StunAttr.Priority, Buffer.alloc(3));
  bad(StunAttr.IceControlling, Buffer.alloc(4));
  bad(StunAttr.UseCandidate, Buffer.alloc(1));
  bad(StunAttr.ErrorCode, Buffer.from('00000263', 'hex')); // class 2
  bad(StunAttr.ErrorCode, Buffer.from('00000464', 'hex')); // number 100
  bad(StunAttr.UnknownAttributes, Buffer.alloc(3));
  bad(StunAttr.Username, Buffer.alloc(514, 0x61));
  bad(StunAttr.RequestedAddressFamily, Buffer.from('03000000', 'hex'));
  bad(StunAttr.MessageIntegrity, Buffer.alloc(19));
  bad(StunAttr.MessageIntegritySha256, Buffer.alloc(15));
  bad(StunAttr.Fingerprint, Buffer.alloc(8));
  bad(StunAttr.PasswordAlgorithms, Buffer.from('000200080000', 'hex'));
});

test('unknown comprehension-required attributes are reported once each; optional ones are not', () => {
  const m = stunMessage('request', StunMethod.Binding, TID, [
    { type: 0x7777, value: Buffer.alloc(2) }, { type: 0xc001, value: Buffer.alloc(1) },
    { type: 0x0002, value: Buffer.alloc(0) }, { type: 0x7777, value: Buffer.alloc(0) },
  ]);
  const d = decodeStunDatagram(encodeStunMessage(m))!;
  assert.deepEqual(d.unknownAttributes, [0x7777, 0x0002]);
  assert.equal(d.attributes.length, 4);
});

test('attributes after MESSAGE-INTEGRITY are ignored, except MI-SHA256 and FINGERPRINT', () => {
  const key = shortTermKey('pass');
  const withMi = encodeStunMessage(stunMessage('request', StunMethod.Binding, TID, [attr(Username, 'u:v')]), { integrityKey: key });
  const extra = Buffer.concat([withMi, Buffer.from('00240004000000ff', 'hex'), Buffer.from('7fff0000', 'hex')]);
  extra.writeUInt16BE(extra.length - 20, 2);
  const d = decodeStunDatagram(extra)!;
  assert.deepEqual(d.attributes.map((a) => a.type), [StunAttr.Username]);
  assert.deepEqual(d.unknownAttributes, []);
  assert.equal(verifyIntegrity(d, key), 'ok'); // MI covers only what precedes it
});

test('both integrity attributes and fingerprint verify; truncated MI-SHA256 verifies over its length', () => {
  const key = shortTermKey('secret-password-of-22+');
  const m = stunMessage('request', StunMethod.Binding, TID, [attr(Username, 'a:b'), attr(IceControlling, 5n), attr(UseCandidate, true)]);
  const bytes = encodeStunMessage(m, { integrityKey: key, integrity: 'both', fingerprint: true });
  const d = decodeStunDatagram(bytes)!;
  assert.equal(verifyIntegrity(d, key, 'sha1'), 'ok');
  assert.equal(verifyIntegrity(d, key, 'sha256'), 'ok');
  assert.equal(d.fingerprint, 'valid');
  assert.equal(hasAttribute(d, StunAttr.UseCandidate), true);
  // Truncate MI-SHA256 to 16 bytes by hand: rebuild the message up to it, then recompute.
  const only256 = encodeStunMessage(m, { integrityKey: key, integrity: 'sha256' });
  const cut = Buffer.from(only256.subarray(0, only256.length - 16));
  cut.writeUInt16BE(16, cut.length - 16 - 2);
  cut.writeUInt16BE(cut.length - 20, 2);
  const full = decodeStunDatagram(only256)!;
  const off = full.messageIntegritySha256!.offset;
  cut.set(computeIntegrity('sha256', key, cut, off, 16).subarray(0, 16), off + 4);
  assert.equal(verifyIntegrity(decodeStunDatagram(cut)!, key, 'sha256'), 'ok');
});

test('TURN and ICE attribute codecs round-trip through a message', () => {
  const peer = { address: '2001:db8::1', port: 5000, family: 6 as const };
  const m = stunMessage('request', StunMethod.ChannelBind, TID, [
    attr(ChannelNumber, 0x4001), attr(XorPeerAddress, peer), attr(XorPeerAddress, { address: '10.0.0.1', port: 1, family: 4 }),
    attr(Lifetime, 600), attr(RequestedTransport, 17), attr(RequestedAddressFamily, 6), attr(DontFragment, true),
    attr(EvenPort, { reserveNext: true }), attr(ReservationToken, Buffer.alloc(8, 7)),
    attr(ErrorCode, { code: 487, reason: 'Role Conflict' }), attr(UnknownAttributes, [0x7777, 0x0002]),
    attr(PasswordAlgorithms, [{ algorithm: 2, parameters: Buffer.alloc(0) }, { algorithm: 9, parameters: Buffer.from([1, 2, 3]) }]),
    attr(MappedAddress, { address: '192.0.2.1', port: 32853, family: 4 }),
  ]);
  const d = decodeStunDatagram(encodeStunMessage(m))!;
  assert.equal(getAttribute(d, ChannelNumber), 0x4001);
  assert.deepEqual(getAttributes(d, XorPeerAddress), [peer, { address: '10.0.0.1', port: 1, family: 4 }]);
  assert.equal(getAttribute(d, Lifetime), 600);
  assert.equal(getAttribute(d, RequestedTransport), 17);
  assert.equal(getAttribute(d, RequestedAddressFamily), 6);
  assert.equal(getAttribute(d, DontFragment), true);
  assert.deepEqual(getAttribute(d, EvenPort), { reserveNext: true });
  assert.deepEqual(getAttribute(d, ReservationToken), Buffer.alloc(8, 7));
  assert.deepEqual(getAttribute(d, ErrorCode), { code: 487, reason: 'Role Conflict' });
  assert.deepEqual(getAttribute(d, UnknownAttributes), [0x7777, 0x0002]);
  assert.deepEqual(getAttribute(d, PasswordAlgorithms), [
    { algorithm: 2, parameters: Buffer.alloc(0) }, { algorithm: 9, parameters: Buffer.from([1, 2, 3]) },
  ]);
  assert.deepEqual(getAttribute(d, MappedAddress), { address: '192.0.2.1', port: 32853, family: 4 });
  assert.equal(getAttribute(d, XorMappedAddress), undefined);
});

test('addresses come out canonical: an IPv4-mapped IPv6 value reads as IPv4', () => {
  const m = stunMessage('success', StunMethod.Binding, TID, [attr(XorMappedAddress, { address: '::FFFF:127.0.0.1', port: 9, family: 6 })]);
  const d = decodeStunDatagram(encodeStunMessage(m))!;
  assert.deepEqual(getAttribute(d, XorMappedAddress), { address: '127.0.0.1', port: 9, family: 4 });
});

test('encoder rejects values the wire cannot carry, with the typed error', () => {
  assert.throws(() => stunMessage('request', 1, TID, [attr(XorMappedAddress, { address: 'example.com', port: 1, family: 4 })]), invalid);
  assert.throws(() => stunMessage('request', 1, TID, [attr(XorMappedAddress, { address: '1.2.3.4', port: 70000, family: 4 })]), invalid);
  assert.throws(() => stunMessage('request', 1, TID, [attr(ErrorCode, { code: 200, reason: '' })]), invalid);
  assert.throws(() => stunMessage('request', 1, TID, [attr(Lifetime, -1)]), invalid);
  assert.throws(() => stunMessage('request', 1, TID, [attr(Username, 'x'.repeat(600))]), invalid);
  assert.throws(() => encodeStunMessage(stunMessage('request', 1, Buffer.alloc(11))), invalid);
  assert.throws(() => encodeStunMessage(stunMessage('request', 1, TID, [{ type: StunAttr.Fingerprint, value: Buffer.alloc(4) }])), invalid);
  assert.throws(() => encodeStunMessage(stunMessage('request', 1, TID, [attr(Data, Buffer.alloc(0xfff8))]), { fingerprint: true }), invalid);
});

test('CRC-32: table implementation agrees with zlib and the check value', () => {
  const check = Buffer.from('123456789');
  assert.equal(crc32Table(check), 0xcbf43926);
  assert.equal(crc32(check), 0xcbf43926);
  const random = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff));
  assert.equal(crc32Table(random), crc32(random));
});

test('first-byte demultiplexing (RFC 7983)', () => {
  const kinds = Array.from({ length: 256 }, (_, b) => classifyDatagram(Buffer.from([b])));
  assert.deepEqual([0, 1, 2, 3].map((b) => kinds[b]), ['stun', 'stun', 'stun', 'stun']);
  assert.equal(kinds.filter((k) => k === 'stun').length, 4);
  assert.deepEqual(kinds.slice(64, 80), Array(16).fill('channel-data'));
  assert.equal(kinds.filter((k) => k === 'channel-data').length, 16);
  assert.equal(kinds[4], 'application');
  assert.equal(kinds[63], 'application');
  assert.equal(kinds[80], 'application');
  assert.equal(classifyDatagram(Buffer.alloc(0)), 'application');
});
