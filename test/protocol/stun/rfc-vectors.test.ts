import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../../src/core/errors.js';
import {
  HEADER_BYTES, IceControlled, Nonce, PasswordAlgorithm, PasswordAlgorithmAttr, Priority, Realm, Software, StunMethod,
  Userhash, Username, XorMappedAddress, decodeStunDatagram, encodeStunMessage, getAttribute, longTermKey,
  prepareCredential, shortTermKey, userHash, verifyIntegrity, type DecodedStunMessage,
} from '../../../src/protocol/stun/index.js';
import { hexVector } from './vectors.js';

const SHORT_TERM = shortTermKey('VOkJxbRl1RmTxUk/WvJxBt');
const LT_USER = '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9';
const LT_PASSWORD_RAW = 'The\u00ADM\u00AAtr\u2168';

function decode(path: string): DecodedStunMessage {
  const m = decodeStunDatagram(hexVector(path));
  assert.ok(m, `${path} decodes as STUN`);
  return m;
}

/** Re-encoding the decoded attributes with the same key must give the same bytes, except padding. */
function assertReencodes(m: DecodedStunMessage, key: Buffer | undefined, integrity: 'sha1' | 'sha256'): void {
  const again = encodeStunMessage(m, { integrityKey: key, integrity, fingerprint: m.fingerprint !== 'absent' });
  assert.equal(again.length, m.raw.length);
  const back = decodeStunDatagram(again)!;
  assert.deepEqual(back.attributes, m.attributes);
  if (key) assert.equal(verifyIntegrity(back, key, integrity), 'ok');
}

test('RFC 5769 2.1 sample request: short-term integrity, fingerprint, ICE attributes', () => {
  const m = decode('rfc5769/2.1-sample-request.hex');
  assert.equal(m.raw.length, 108);
  assert.equal(m.cls, 'request');
  assert.equal(m.method, StunMethod.Binding);
  assert.equal(m.transactionId.toString('hex'), 'b7e7a701bc34d686fa87dfae');
  assert.equal(getAttribute(m, Software), 'STUN test client');
  assert.equal(getAttribute(m, Priority), 0x6e0001ff);
  assert.equal(getAttribute(m, IceControlled), 0x932ff9b151263b36n);
  assert.equal(getAttribute(m, Username), 'evtj:h6vY'); // the three 0x20 are padding, not value
  assert.equal(verifyIntegrity(m, SHORT_TERM), 'ok');
  assert.equal(verifyIntegrity(m, shortTermKey('wrong')), 'mismatch');
  assert.equal(verifyIntegrity(m, SHORT_TERM, 'sha256'), 'absent');
  assert.equal(m.fingerprint, 'valid');
  assert.equal(m.raw.readUInt32BE(m.raw.length - 4), 0xe57a3bcf);
  assert.deepEqual(m.unknownAttributes, []);
  assertReencodes(m, SHORT_TERM, 'sha1');
});

test('RFC 5769 2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853', () => {
  const m = decode('rfc5769/2.2-sample-ipv4-response.hex');
  assert.equal(m.raw.length, 80);
  assert.equal(m.cls, 'success');
  assert.equal(m.transactionId.toString('hex'), 'b7e7a701bc34d686fa87dfae');
  assert.equal(getAttribute(m, Software), 'test vector');
  assert.deepEqual(getAttribute(m, XorMappedAddress), { address: '192.0.2.1', port: 32853, family: 4 });
  assert.equal(verifyIntegrity(m, SHORT_TERM), 'ok');
  assert.equal(m.fingerprint, 'valid');
  assert.equal(m.raw.readUInt32BE(m.raw.length - 4), 0xc07d4c96);
  assertReencodes(m, SHORT_TERM, 'sha1');
});

test('RFC 5769 2.3 IPv6 response: XOR with cookie and transaction id', () => {
  const m = decode('rfc5769/2.3-sample-ipv6-response.hex');
  assert.equal(m.raw.length, 92);
  assert.deepEqual(getAttribute(m, XorMappedAddress), { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853, family: 6 });
  assert.equal(verifyIntegrity(m, SHORT_TERM), 'ok');
  assert.equal(m.fingerprint, 'valid');
  assert.equal(m.raw.readUInt32BE(m.raw.length - 4), 0xc8fb0b4c);
  assertReencodes(m, SHORT_TERM, 'sha1');
});

test('RFC 5769 2.4 long-term request: MD5 key from the SASLprep-ed password, no fingerprint', () => {
  const m = decode('rfc5769/2.4-sample-request-long-term.hex');
  assert.equal(m.raw.length, 116);
  assert.equal(m.transactionId.toString('hex'), '78ad3433c6ad72c029da412e');
  assert.equal(getAttribute(m, Username), LT_USER);
  assert.equal(Buffer.byteLength(LT_USER), 18);
  assert.equal(getAttribute(m, Nonce), 'f//499k954d6OL34oL9FSTvy64sA');
  assert.equal(getAttribute(m, Realm), 'example.org');
  assert.equal(m.fingerprint, 'absent');
  assert.equal(prepareCredential(LT_PASSWORD_RAW), 'TheMatrIX');
  const key = longTermKey(LT_USER, 'example.org', prepareCredential(LT_PASSWORD_RAW));
  assert.equal(key.toString('hex'), 'e8ca7ad59d5eb0518e312911d2dab2a9');
  assert.equal(verifyIntegrity(m, key), 'ok');
  // The unprepared password gives another key: callers must prepare (or use ASCII).
  assert.equal(verifyIntegrity(m, longTermKey(LT_USER, 'example.org', LT_PASSWORD_RAW)), 'mismatch');
  assertReencodes(m, key, 'sha1');
});

test('RFC 8489 B.1 (corrected): USERHASH, PASSWORD-ALGORITHM SHA-256, MESSAGE-INTEGRITY-SHA256', () => {
  const m = decode('rfc8489/B.1-sample-request-long-term-sha256-errata.hex');
  assert.equal(m.raw.length, 164);
  assert.equal(m.transactionId.toString('hex'), '78ad3433c6ad72c029da412e');
  const uh = getAttribute(m, Userhash)!;
  assert.ok(uh.equals(userHash(LT_USER, 'example.org')));
  assert.ok(uh.toString('hex').startsWith('4a3cf38f') && uh.toString('hex').endsWith('407f1704'));
  assert.equal(getAttribute(m, Nonce), 'obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA');
  assert.equal(getAttribute(m, Realm), 'example.org');
  assert.equal(getAttribute(m, PasswordAlgorithmAttr)?.algorithm, PasswordAlgorithm.Sha256);
  assert.equal(getAttribute(m, PasswordAlgorithmAttr)?.parameters.length, 0);
  const key = longTermKey(LT_USER, 'example.org', 'TheMatrIX', 'sha256');
  assert.equal(verifyIntegrity(m, key, 'sha256'), 'ok');
  assert.equal(verifyIntegrity(m, key, 'sha1'), 'absent');
  assert.equal(verifyIntegrity(m, longTermKey(LT_USER, 'example.org', 'TheMatrIX'), 'sha256'), 'mismatch');
  assertReencodes(m, key, 'sha256');
});

test('RFC 8489 B.1 as printed is rejected', () => {
  const bytes = hexVector('rfc8489/B.1-as-printed-in-rfc.hex');
  assert.equal(bytes.length, 156);
  // Its length field counts the header, so as a datagram it claims 20 bytes it does not have.
  assert.throws(() => decodeStunDatagram(bytes), (e) => isSluiceError(e, 'SLUICE_ERR_STUN_INVALID'));
  // With the length field repaired the message parses, and then the printed MAC fails the RFC rule.
  const repaired = Buffer.from(bytes);
  repaired.writeUInt16BE(bytes.length - HEADER_BYTES, 2);
  const m = decodeStunDatagram(repaired)!;
  const key = longTermKey(LT_USER, 'example.org', 'TheMatrIX', 'sha256');
  assert.equal(verifyIntegrity(m, key, 'sha256'), 'mismatch');
});
